-- SPDX-License-Identifier: Apache-2.0
-- wrk.lua: the requests of the small-object benchmarks (bench/bench.py).
--
-- BENCH_MODE=put: every request PUTs BENCH_BODY_BYTES bytes under a name
--   never used before (BENCH_RUN-<thread>-<counter>), so that each one is a
--   new durable write.
-- BENCH_MODE=get: every request GETs one of BENCH_NAMES names
--   (BENCH_PREFIX<0..BENCH_NAMES-1>) picked at random; the requests are
--   built once in init() so that wrk spends its time on the network, not
--   in Lua.
-- Both send "Authorization: Bearer BENCH_TOKEN" and ask for BENCH_SERVICE.
-- done() prints one line "BENCH_JSON {...}" with the totals, the status
-- errors (status > 399) and latency percentiles in microseconds.

local mode = os.getenv("BENCH_MODE") or "get"
local token = os.getenv("BENCH_TOKEN") or "none"
local service = os.getenv("BENCH_SERVICE") or "photos"
local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/octet-stream",
   }
   base = "/v1/me/data/" .. service .. "/"
   counter = 0
   if mode == "put" then
      local n = tonumber(os.getenv("BENCH_BODY_BYTES") or "1024")
      local parts = {}
      math.randomseed(id * 7919)
      for i = 1, n do
         parts[i] = string.char(math.random(0, 255))
      end
      body = table.concat(parts)
      prefix = base .. (os.getenv("BENCH_RUN") or "put") .. "-" .. id .. "-"
   else
      headers["Content-Type"] = nil
      local names = tonumber(os.getenv("BENCH_NAMES") or "1000")
      local p = base .. (os.getenv("BENCH_PREFIX") or "g-")
      reqs = {}
      for i = 1, names do
         reqs[i] = wrk.format("GET", p .. (i - 1), headers)
      end
      math.randomseed(id * 104729)
   end
end

function request()
   counter = counter + 1
   if mode == "put" then
      return wrk.format("PUT", prefix .. counter, headers, body)
   end
   return reqs[math.random(#reqs)]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
