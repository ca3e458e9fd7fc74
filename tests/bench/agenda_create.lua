-- wrk script: event.create commands through /v1/commands, each with its own
-- Idempotency-Key, spread over 100 calendars (named "cal..." so that they
-- live on the first events shard, the one the benchmark starts) and a month.
local thread_id = 0

function setup(thread)
    thread:set("tid", thread_id)
    thread_id = thread_id + 1
end

function init(args)
    counter = 0
    prefix = tostring(tid) .. "-" .. tostring(math.random(1, 1e9))
end

function request()
    counter = counter + 1
    local cal = string.format("cal%03d", counter % 100)
    local day = 1 + counter % 28
    local hour = counter % 20
    local body = string.format(
        '{"op":"event.create","actor":{"user":"%s","role":"user"},' ..
        '"args":{"calendar":"%s","title":"bench %d",' ..
        '"start":"2027-03-%02dT%02d:00:00Z","end":"2027-03-%02dT%02d:30:00Z",' ..
        '"time_zone":"UTC"}}', cal, cal, counter, day, hour, day, hour)
    return wrk.format("POST", "/v1/commands",
                      {["Content-Type"] = "application/json",
                       ["Idempotency-Key"] = "c" .. prefix .. "-" .. counter},
                      body)
end
