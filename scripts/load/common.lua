-- Shared helpers for the Gatehouse wrk scripts (loaded with dofile).
-- Every scenario script defines `scenario` and calls `common.install(...)`.

local common = {}

-- Lines of a file, without empty ones.
function common.read_lines(path)
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  local out = {}
  for line in f:lines() do
    if line ~= "" then out[#out + 1] = line end
  end
  f:close()
  return out
end

-- application/x-www-form-urlencoded value encoding.
function common.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- Threads are numbered 0..n-1 in setup(); each thread reads `thread_id`.
local threads = {}
local next_id = 0
function common.setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

-- Sum of a numeric global over every thread (after the run).
function common.sum(name)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (tonumber(t:get(name)) or 0)
  end
  return total
end

-- One parseable line per run:
-- RESULT name=<scenario> requests=N duration_s=S rps=R ok_rps=R p50_ms=X p99_ms=Y
--        non2xx=N sockerr=N [extra key=value ...]
-- non2xx is wrk's status error count (responses with status >= 400; wrk does
-- not count 1xx/3xx, none of which these endpoints answer) minus `excluded`:
-- filler requests a script sent after it ran out of input, which it sends to
-- a 404 path and counts itself. requests leaves those out too. ok_rps counts
-- only the responses below 400.
function common.report(name, summary, latency, extra)
  extra = extra or {}
  local e = summary.errors
  local dur = summary.duration / 1e6
  local excluded = tonumber(extra.excluded) or 0
  local ok = summary.requests - e.status
  local non2xx = e.status - excluded
  if non2xx < 0 then non2xx = 0 end
  local line = string.format(
    "RESULT name=%s requests=%d duration_s=%.3f rps=%.1f ok_rps=%.1f p50_ms=%.2f p99_ms=%.2f non2xx=%d sockerr=%d",
    name, summary.requests - excluded, dur, (summary.requests - excluded) / dur, ok / dur,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    non2xx, e.connect + e.read + e.write + e.timeout)
  local keys = {}
  for k in pairs(extra) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    line = line .. string.format(" %s=%s", k, tostring(extra[k]))
  end
  io.write(line .. "\n")
end

return common
