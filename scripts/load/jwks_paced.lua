-- GET /.well-known/jwks.json at a gentle, fixed pace (each connection waits
-- 10 ms between requests: about 100 req/s per connection), to measure the
-- latency a relying party sees while another run loads the server, without
-- itself competing for the CPU the way an unpaced wrk would.
local common = dofile(os.getenv("LOAD_DIR") .. "/common.lua")

setup = common.setup
function delay()
  return 10
end
function done(summary, latency, requests)
  common.report(os.getenv("RESULT_NAME") or "jwks_paced", summary, latency)
end
