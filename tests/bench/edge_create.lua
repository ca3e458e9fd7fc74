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
    -- each thread fills its own run of consecutive half-hour slots, from a
    -- base the benchmark moves for every run: a calendar the way people
    -- keep one (conflict detection still walks the owner's index, it
    -- rarely finds anything)
    base = tonumber(os.getenv("AGENDA_EPOCH")) + tid * 400000000
end

function request()
    counter = counter + 1
    local start = base + counter * 3600
    local body = string.format(
        '{"title":"bench %d","start":"%s","end":"%s","time_zone":"UTC"}',
        counter, os.date("!%Y-%m-%dT%H:%M:%SZ", start),
        os.date("!%Y-%m-%dT%H:%M:%SZ", start + 1800))
    return wrk.format("POST", "/api/v1/calendars/" .. calendar .. "/events",
                      {["Content-Type"] = "application/json",
                       ["Authorization"] = "Bearer " .. token,
                       ["Idempotency-Key"] = "e" .. prefix .. "-" .. counter},
                      body)
end
