-- wrk script: etcd v3 JSON gateway PUT of a unique key with a 100-byte value.
local thread_id = 0

function setup(thread)
    thread:set("tid", thread_id)
    thread_id = thread_id + 1
end

local b64chars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
    return ((s:gsub(".", function(x)
        local r, b = "", x:byte()
        for i = 8, 1, -1 do
            r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0")
        end
        return r
    end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
        if #x < 6 then return "" end
        local c = 0
        for i = 1, 6 do
            c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0)
        end
        return b64chars:sub(c + 1, c + 1)
    end) .. ({"", "==", "="})[#s % 3 + 1])
end

function init(args)
    counter = 0
    value = base64(string.rep("v", 100))
    prefix = tostring(tid) .. "-" .. tostring(math.random(1, 1e9))
end

function request()
    counter = counter + 1
    local key = base64("b" .. prefix .. "-" .. counter)
    local body = '{"key":"' .. key .. '","value":"' .. value .. '"}'
    return wrk.format("POST", "/v3/kv/put",
                      {["Content-Type"] = "application/json"}, body)
end
