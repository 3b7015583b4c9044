-- POST /oauth/token grant_type=refresh_token, every request with a different,
-- never used refresh token (they rotate: a reused one would be an error).
-- wrk args: -- <refresh_tokens_file> <threads>
-- Thread k takes lines k, k+n, k+2n ... (disjoint slices). When the first
-- thread has used its slice up, the whole run ends early rather than reuse a
-- token: the thread stops and sends wrk's main thread SIGINT (what Ctrl-C
-- does), so wrk stops every thread and its duration and req/s are those of
-- the shortened run. The few requests a connection still sends after that go
-- to a 404 path (/load-tokens-exhausted); they are counted and left out.
local common = dofile(os.getenv("LOAD_DIR") .. "/common.lua")
local ffi = require("ffi")
ffi.cdef [[
  int getpid(void);
  int tgkill(int tgid, int tid, int sig);
]]

-- SIGINT to wrk's main thread (its tid is the pid): it wakes from its sleep
-- and stops the run.
local function end_run()
  local pid = ffi.C.getpid()
  ffi.C.tgkill(pid, pid, 2)
end

local mine = {}
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
used = 0
excluded = 0
excluded_sent = 0
ran_out = 0
slice = 0

setup = common.setup
function init(args)
  local tokens = common.read_lines(assert(args[1], "usage: -- <refresh_tokens_file> <threads>"))
  local n = assert(tonumber(args[2]), "thread count missing")
  local id = thread_id or 0
  for k = id + 1, #tokens, n do
    mine[#mine + 1] = tokens[k]
  end
  slice = #mine
end
function request()
  if used < #mine then
    used = used + 1
    return wrk.format("POST", "/oauth/token", headers,
      "grant_type=refresh_token&refresh_token=" .. common.urlencode(mine[used]))
  end
  if excluded_sent == 0 then
    ran_out = 1
    end_run()
    wrk.thread:stop()
  end
  excluded_sent = excluded_sent + 1
  return wrk.format("GET", "/load-tokens-exhausted")
end
function response(status, headers, body)
  if status == 404 then excluded = excluded + 1 end
end
function done(summary, latency, requests)
  local total = common.sum("slice")
  local used_all = common.sum("used")
  common.report(os.getenv("RESULT_NAME") or "refresh", summary, latency, {
    tokens = total,
    used = used_all,
    excluded = common.sum("excluded"),
    ran_out = tostring(common.sum("ran_out") > 0),
  })
end
