-- POST /users/login: wrk ... -- USERNAME PASSWORD
init = function(args)
	wrk.method = "POST"
	wrk.path = "/users/login"
	wrk.headers["Content-Type"] = "application/json"
	wrk.body = string.format('{"username":"%s","password":"%s"}',
	    args[1], args[2])
end
