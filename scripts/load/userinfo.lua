-- GET $TARGET_PATH (default /account/me) with a Bearer access token,
-- cycling over the tokens in a file (one a line).  wrk args: -- <access_tokens_file>
-- (/oauth/userinfo needs tokens with the openid scope.)
local common = dofile(os.getenv("LOAD_DIR") .. "/common.lua")

local reqs = {}
local i = 0

setup = common.setup
function init(args)
  local tokens = common.read_lines(assert(args[1], "usage: -- <access_tokens_file>"))
  for k, tok in ipairs(tokens) do
    reqs[k] = wrk.format("GET", os.getenv("TARGET_PATH") or "/account/me", { ["Authorization"] = "Bearer " .. tok })
  end
  assert(#reqs > 0, "no access tokens")
  i = thread_id or 0
end
function request()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
function done(summary, latency, requests)
  common.report(os.getenv("RESULT_NAME") or "account_me", summary, latency)
end
