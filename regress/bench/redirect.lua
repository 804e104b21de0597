-- GET /:id over ids picked at random (per request) from a file of ids,
-- one a line: wrk ... -- IDFILE
local ids, n = {}, 0

init = function(args)
	for line in io.lines(args[1]) do
		n = n + 1
		ids[n] = "/" .. line
	end
	math.randomseed(os.time() * 1000 + (thread_no or 0))
end

request = function()
	return wrk.format("GET", ids[math.random(n)])
end
