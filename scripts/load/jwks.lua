-- GET /.well-known/jwks.json (run wrk with that URL; static request).
-- RESULT_NAME (env) names the result line, default "jwks".
local common = dofile(os.getenv("LOAD_DIR") .. "/common.lua")

setup = common.setup
function done(summary, latency, requests)
  common.report(os.getenv("RESULT_NAME") or "jwks", summary, latency)
end
