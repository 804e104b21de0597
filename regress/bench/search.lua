-- GET / with a token and a query string drawn per request from a file
-- of paths (one per line), e.g. /?limit=100&q=kalomi
-- wrk ... -- TOKEN FILE
local paths = {}

init = function(args)
	wrk.method = "GET"
	wrk.headers["Authorization"] = "Bearer " .. args[1]
	for line in io.lines(args[2]) do
		paths[#paths + 1] = line
	end
	math.randomseed(os.time() * 1000 + (thread_no or 0))
end

request = function()
	return wrk.format(nil, paths[math.random(#paths)])
end
