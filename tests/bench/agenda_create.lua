-- wrk script: event.create commands through /v1/commands, each with its own
-- Idempotency-Key, spread over 100 calendars (named "cal..." so that they
-- live on the first events shard, the one the benchmark starts).
local thread_id = 0

function setup(thread)
    thread:set("tid", thread_id)
    thread_id = thread_id + 1
end

function init(args)
    counter = 0
    prefix = tostring(tid) .. "-" .. tostring(math.random(1, 1e9))
    -- consecutive half-hour slots per calendar and thread (see
    -- edge_create.lua); AGENDA_EPOCH moves with every run
    base = tonumber(os.getenv("AGENDA_EPOCH")) + tid * 400000000
end

function request()
    counter = counter + 1
    local cal = string.format("cal%03d", counter % 100)
    local start = base + math.floor(counter / 100) * 3600
    local body = string.format(
        '{"op":"event.create","actor":{"user":"%s","role":"user"},' ..
        '"args":{"calendar":"%s","title":"bench %d",' ..
        '"start":"%s","end":"%s","time_zone":"UTC"}}', cal, cal, counter,
        os.date("!%Y-%m-%dT%H:%M:%SZ", start),
        os.date("!%Y-%m-%dT%H:%M:%SZ", start + 1800))
    return wrk.format("POST", "/v1/commands",
                      {["Content-Type"] = "application/json",
                       ["Idempotency-Key"] = "c" .. prefix .. "-" .. counter},
                      body)
end
