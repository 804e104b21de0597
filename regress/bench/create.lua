-- POST / with a token: a new link per request, each with its own URL.
-- wrk ... -- TOKEN
local token, count = nil, 0
local headers = {}

init = function(args)
	token = args[1]
	headers["Authorization"] = "Bearer " .. token
	headers["Content-Type"] = "application/json"
end

request = function()
	count = count + 1
	return wrk.format("POST", "/", headers, string.format(
	    '{"value":"https://example.org/bench/%d/%d?q=%d"}',
	    thread_no or 0, count, math.random(1000000)))
end
