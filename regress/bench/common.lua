-- common.lua — prepended by bench.py to every wrk script: one line of
-- JSON at the end of a run, which bench.py reads (latencies in µs).

local threads = 0

setup = function(thread)
	threads = threads + 1
	thread:set("thread_no", threads)
end

done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
	    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
	    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, ' ..
	    '"max_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
	    '"status": %d, "timeout": %d}\n',
	    summary.requests, summary.duration, summary.bytes,
	    latency:percentile(50), latency:percentile(90),
	    latency:percentile(99), latency.mean, latency.max,
	    e.connect, e.read, e.write, e.status, e.timeout))
end
