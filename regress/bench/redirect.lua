-- GET /:id, the id drawn per request:
--   wrk ... -- IDFILE                  uniformly from a file of ids, one
--                                      a line
--   wrk ... -- MODEL IDFILE A B        MODEL "uniform" or "zipf"
--   wrk ... -- MODEL bulk:N:OFFSET:STRIDE A B
--                                      the bench's bulk links: index k
--                                      (0..N-1) is the id base62(OFFSET +
--                                      k * STRIDE), 7 characters
-- zipf: rank r of 1..N with P(r) proportional to 1/r (s = 1), and the
-- link of rank r is index (A * (r - 1) + B) % N (A coprime to N), so the
-- hot links are spread over the table, not its first pages.  Ids are
-- made per request: no list of ten million strings in each thread.
local B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local ZIPF_TABLE = 100000	-- ranks looked up exactly; beyond, the
				-- harmonic sum's logarithm
local ids, n, model = nil, 0, "uniform"
-- Each request comes with a browser's User-Agent and often a Referer,
-- as real visits do, so that visit analytics (docs/analytics.md) does
-- its real work: classify, keep the referer's host, write the record.
local AGENTS = {
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 " ..
	    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) " ..
	    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 " ..
	    "Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, " ..
	    "like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) " ..
	    "Gecko/20100101 Firefox/121.0",
}
local REFERERS = { "https://t.co/Ab12Cd", "https://www.google.com/",
    "https://news.ycombinator.com/item?id=1", false, false }
local headers = {}
local offset, stride, A, B = 0, 1, 1, 0
local cdf, K, HK, HN

local function b62(x)
	local t = {}
	for i = 7, 1, -1 do
		local d = x % 62
		t[i] = string.sub(B62, d + 1, d + 1)
		x = (x - d) / 62
	end
	return table.concat(t)
end

local function zipf_init()
	K = math.min(n, ZIPF_TABLE)
	cdf = {}
	local h = 0
	for i = 1, K do
		h = h + 1 / i
		cdf[i] = h
	end
	HK = h
	HN = HK
	if n > K then
		HN = HK + math.log((n + 0.5) / (K + 0.5))
	end
end

-- A rank of 1..n.
local function zipf_rank()
	local u = math.random() * HN
	if u <= HK then
		local lo, hi = 1, K
		while lo < hi do
			local mid = math.floor((lo + hi) / 2)
			if cdf[mid] < u then lo = mid + 1 else hi = mid end
		end
		return lo
	end
	local r = math.ceil((K + 0.5) * math.exp(u - HK) - 0.5)
	if r <= K then r = K + 1 end
	if r > n then r = n end
	return r
end

init = function(args)
	local src = args[1]
	if args[2] ~= nil then
		model, src = args[1], args[2]
		A, B = tonumber(args[3]), tonumber(args[4])
	end
	local bn, bo, bs = string.match(src, "^bulk:(%d+):(%d+):(%d+)$")
	if bn ~= nil then
		n, offset, stride = tonumber(bn), tonumber(bo), tonumber(bs)
	else
		ids = {}
		for line in io.lines(src) do
			n = n + 1
			ids[n] = "/" .. line
		end
	end
	if model == "zipf" then
		zipf_init()
	elseif model ~= "uniform" then
		error("traffic model " .. model .. ": uniform or zipf")
	end
	math.randomseed(os.time() * 1000 + (thread_no or 0))
end

request = function()
	local k
	if model == "zipf" then
		k = (A * (zipf_rank() - 1) + B) % n
	else
		k = math.random(n) - 1
	end
	headers["User-Agent"] = AGENTS[math.random(#AGENTS)]
	headers["Referer"] = REFERERS[math.random(#REFERERS)] or nil
	if ids ~= nil then
		return wrk.format("GET", ids[k + 1], headers)
	end
	return wrk.format("GET", "/" .. b62(offset + k * stride), headers)
end
