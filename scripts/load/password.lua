-- POST /oauth/token grant_type=password, cycling over the seeded users.
-- wrk args: -- <emails_file> <password> [collect_dir [collect_per_thread]]
--   collect_dir: every 200 response's refresh_token is appended to
--     <collect_dir>/rt.<thread>.txt (feeds the refresh scenario).
--   collect_per_thread: stop the thread once it has collected that many
--     (used for the seeding run; 0 or absent = no limit).
local common = dofile(os.getenv("LOAD_DIR") .. "/common.lua")

local reqs = {}
local i = 0
local out = nil
collected = 0
local limit = 0

setup = common.setup
function init(args)
  local emails = common.read_lines(assert(args[1], "usage: -- <emails_file> <password> [collect_dir [n]]"))
  local password = assert(args[2], "password missing")
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  for k, email in ipairs(emails) do
    local body = "grant_type=password&username=" .. common.urlencode(email) ..
      "&password=" .. common.urlencode(password)
    reqs[k] = wrk.format("POST", "/oauth/token", headers, body)
  end
  assert(#reqs > 0, "no users")
  i = (thread_id or 0) * 7919
  if args[3] and args[3] ~= "" then
    out = assert(io.open(args[3] .. "/rt." .. tostring(thread_id or 0) .. ".txt", "a"))
    out:setvbuf("line")
    limit = tonumber(args[4]) or 0
  end
end
function request()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
if os.getenv("COLLECT") == "1" then
  function response(status, headers, body)
    if status == 200 and out then
      local tok = body:match('"refresh_token"%s*:%s*"([^"]+)"')
      if tok then
        out:write(tok, "\n")
        collected = collected + 1
        if limit > 0 and collected >= limit then wrk.thread:stop() end
      end
    end
  end
end
function done(summary, latency, requests)
  common.report(os.getenv("RESULT_NAME") or "password", summary, latency,
    { collected = common.sum("collected") })
end
