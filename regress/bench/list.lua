-- GET / with a token: the first page of the token's user's links.
-- wrk ... -- TOKEN
init = function(args)
	wrk.method = "GET"
	wrk.path = "/"
	wrk.headers["Authorization"] = "Bearer " .. args[1]
end
