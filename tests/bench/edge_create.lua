-- wrk script: authenticated event creations through the HTTPS edge.
-- The users (AGENDA_USERS, names and bearer tokens) come from the
-- environment; each request has its own Idempotency-Key.
local thread_id = 0

function setup(thread)
    thread:set("tid", thread_id)
    thread_id = thread_id + 1
end

function init(args)
    counter = 0
    -- AGENDA_USERS: "name:token,name:token,..."; requests take turns
    users = {}
    for name, tok in string.gmatch(os.getenv("AGENDA_USERS"),
                                   "([^:,]+):([^,]+)") do
        users[#users + 1] = {name = name, token = tok}
    end
    prefix = tostring(tid) .. "-" .. tostring(math.random(1, 1e9))
    -- each thread fills its own run of consecutive half-hour slots, from a
    -- base the benchmark moves for every run: a calendar the way people
    -- keep one (conflict detection still walks the owner's index, it
    -- rarely finds anything)
    base = tonumber(os.getenv("AGENDA_EPOCH")) + tid * 400000000
end

function request()
    counter = counter + 1
    local user = users[1 + counter % #users]
    local start = base + counter * 3600
    local body = string.format(
        '{"title":"bench %d","start":"%s","end":"%s","time_zone":"UTC"}',
        counter, os.date("!%Y-%m-%dT%H:%M:%SZ", start),
        os.date("!%Y-%m-%dT%H:%M:%SZ", start + 1800))
    return wrk.format("POST", "/api/v1/calendars/" .. user.name .. "/events",
                      {["Content-Type"] = "application/json",
                       ["Authorization"] = "Bearer " .. user.token,
                       ["Idempotency-Key"] = "e" .. prefix .. "-" .. counter},
                      body)
end
