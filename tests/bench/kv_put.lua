-- wrk script: PUT /kv/<unique key> with a 100-byte value.  Each request
-- has its own key and Idempotency-Key so every one is a real write.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
    thread:set("tid", thread_id)
    thread_id = thread_id + 1
    table.insert(threads, thread)
end

function init(args)
    value = string.rep("v", 100)
    prefix = tostring(tid) .. "-" .. tostring(math.random(1, 1e9))
end

function request()
    counter = counter + 1
    local key = "b" .. prefix .. "-" .. counter
    return wrk.format("PUT", "/kv/" .. key,
                      {["Idempotency-Key"] = key}, value)
end

function response(status, headers, body)
    if status ~= 200 then
        errors = (errors or 0) + 1
    end
end
