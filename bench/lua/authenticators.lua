-- wrk script: GET <url> (GET /mfa/authenticators) with `Authorization: Bearer $BENCH_BEARER`.
-- Counts every response whose status is not 200 (wrk itself only counts >= 400), prints the
-- first few of them to stderr, and ends with one machine-readable line on stdout:
--   RESULT {"requests":..,"rps":..,"p50_us":..,"p99_us":..,"non200":..,...}
-- bench/server.sh fails the run if non200 or any socket error is not zero.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local token = os.getenv("BENCH_BEARER")
   if token == nil or token == "" then
      error("BENCH_BEARER (the access token) is not set")
   end
   wrk.method = "GET"
   wrk.headers["Authorization"] = "Bearer " .. token
   responses = 0
   non200 = 0
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= 200 then
      non200 = non200 + 1
      if non200 <= 3 then
         io.stderr:write(string.format("non-200 response: HTTP %d %s\n", status, body:sub(1, 300)))
      end
   end
end

function done(summary, latency, requests)
   local counted, bad = 0, 0
   for _, t in ipairs(threads) do
      counted = counted + t:get("responses")
      bad = bad + t:get("non200")
   end
   local e = summary.errors
   io.write(string.format(
      'RESULT {"requests":%d,"responses_counted":%d,"duration_us":%d,"rps":%.1f,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"non200":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
      summary.requests, counted, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      bad, e.connect, e.read, e.write, e.timeout))
end
