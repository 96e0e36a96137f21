-- SPDX-License-Identifier: Apache-2.0
-- audit_proof.lua: inclusion proofs of random leaves, for bench/audit_bench.sh.
-- BENCH_TREE_SIZE: the signed tree size; every request asks for the proof of
-- a random leaf below it in the tree of that size. The requests are built
-- once in init() so that wrk spends its time on the network, not in Lua:
-- 200,000 per thread, so that the leaves asked for cover a good part of a
-- tree of a million (a few thousand would all stay in oikosd's node cache).
-- done() prints one line "BENCH_JSON {...}" as bench/wrk.lua does.

local size = tonumber(os.getenv("BENCH_TREE_SIZE") or "1")
local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(id * 7919)
   reqs = {}
   for i = 1, 200000 do
      local index = math.random(0, size - 1)
      reqs[i] = wrk.format("GET", "/v1/audit/proof/inclusion?index=" .. index ..
                           "&tree_size=" .. size)
   end
end

function request()
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
