-- wrk script: authenticated event creations through the HTTPS edge.
-- AGENDA_TOKEN (a bearer token) and AGENDA_CALENDAR (its user) come from
-- the environment; each request has its own Idempotency-Key.
local thread_id = 0

function setup(thread)
    thread:set("tid", thread_id)
    thread_id = thread_id + 1
end

function init(args)
    counter = 0
    token = os.getenv("AGENDA_TOKEN")
    calendar = os.getenv("AGENDA_CALENDAR")
    prefix = tostring(tid) .. "-" .. tostring(math.random(1, 1e9))
end

function request()
    counter = counter + 1
    local day = 1 + counter % 28
    local hour = counter % 20
    local body = string.format(
        '{"title":"bench %d","start":"2027-03-%02dT%02d:00:00Z",' ..
        '"end":"2027-03-%02dT%02d:30:00Z","time_zone":"UTC"}',
        counter, day, hour, day, hour)
    return wrk.format("POST", "/api/v1/calendars/" .. calendar .. "/events",
                      {["Content-Type"] = "application/json",
                       ["Authorization"] = "Bearer " .. token,
                       ["Idempotency-Key"] = "e" .. prefix .. "-" .. counter},
                      body)
end
