-- wrk script: authenticated GET of AGENDA_PATH through the HTTPS edge.
function init(args)
    token = os.getenv("AGENDA_TOKEN")
    path = os.getenv("AGENDA_PATH")
end

function request()
    return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
