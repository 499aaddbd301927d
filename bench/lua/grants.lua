-- wrk script: POST /oauth/token once per line of $BENCH_BODIES (one mfa-otp grant body per
-- user, prepared by bench/lib.sh bench_grant_bodies), each line exactly once, then stop.
--
-- Run it with ONE thread (-t1) and a generous -d: the thread stops itself when the last
-- body has been answered and sends wrk SIGINT so that wrk's main thread stops waiting for
-- -d and prints its summary at once. Needs wrk built on LuaJIT (Debian's is) for ffi.
--
-- wrk keeps every connection busy, so once the bodies are all sent, a connection that
-- frees up is given an incomplete request (headers announcing a body that never comes):
-- the server just waits on it, nothing is answered, and no extra request is measured.
--
-- The rate is computed here from a monotonic clock, from the first body sent to the last
-- answer received. Ends with one line on stdout:
--   RESULT {"bodies":..,"responses_counted":..,"rps":..,"p50_us":..,"non200":..,...}

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
int kill(int pid, int sig);
int getpid(void);
unsigned long pthread_self(void);
]]

local CLOCK_MONOTONIC = 1
local SIGINT = 2
local ts = ffi.new("bench_timespec")

local function now()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = os.getenv("BENCH_BODIES")
   if path == nil or path == "" then
      error("BENCH_BODIES (the file of request bodies) is not set")
   end
   local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   reqs = {}
   for line in io.lines(path) do
      if line ~= "" then
         reqs[#reqs + 1] = wrk.format("POST", "/oauth/token", headers, line)
      end
   end
   total = #reqs
   if total == 0 then
      error("no request bodies in " .. path)
   end
   hang = "POST /oauth/token HTTP/1.1\r\nHost: " .. wrk.headers["Host"] ..
      "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
   -- wrk calls request() once on its main thread (the one running init) to validate the
   -- request format; that call sends nothing, so it must not use up a body.
   init_thread = ffi.C.pthread_self()
   issued = 0
   responses = 0
   non200 = 0
   t_first = 0
   t_last = 0
end

function request()
   if ffi.C.pthread_self() == init_thread then
      return reqs[1]
   end
   if issued < total then
      issued = issued + 1
      if issued == 1 then
         t_first = now()
      end
      return reqs[issued]
   end
   return hang
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= 200 then
      non200 = non200 + 1
      if non200 <= 3 then
         io.stderr:write(string.format("non-200 response: HTTP %d %s\n", status, body:sub(1, 300)))
      end
   end
   if responses == total then
      t_last = now()
      wrk.thread:stop()
      ffi.C.kill(ffi.C.getpid(), SIGINT)
   end
end

function done(summary, latency, requests)
   if #threads ~= 1 then
      error("grants.lua walks its bodies once: run wrk with -t1")
   end
   local t = threads[1]
   local counted, bad = t:get("responses"), t:get("non200")
   local elapsed = t:get("t_last") - t:get("t_first")
   local rps = 0
   if counted == t:get("total") and elapsed > 0 then
      rps = counted / elapsed
   end
   local e = summary.errors
   io.write(string.format(
      'RESULT {"bodies":%d,"requests":%d,"responses_counted":%d,"elapsed_s":%.3f,' ..
      '"wrk_duration_us":%d,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"non200":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
      t:get("total"), summary.requests, counted, elapsed, summary.duration, rps,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      bad, e.connect, e.read, e.write, e.timeout))
end
