# Sourced by run.sh and instructions.sh: the settings a measured server
# runs with, all from the environment (no config/gatehouse.toml is read).
# server_env PORT DB_URL WORK: exports them; with SIGNING_ALG set, also
# writes $WORK/gatehouse.toml with the one client (the default id, so
# requests name none) that signs with it.
server_env() {
  local port=$1 db_url=$2 work=$3
  unset GATEHOUSE_CONFIG
  if [[ -n ${SIGNING_ALG:-} ]]; then
    cat >"$work/gatehouse.toml" <<TOML
[[clients]]
id = "gatehouse"
grant_types = ["password", "refresh_token"]
signing_alg = "$SIGNING_ALG"
TOML
    export GATEHOUSE_CONFIG="$work/gatehouse.toml"
  fi
  export GATEHOUSE_SERVER__BIND="127.0.0.1:$port" \
    GATEHOUSE_SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
    GATEHOUSE_DATABASE__URL="$db_url" \
    GATEHOUSE_ACCOUNTS__REQUIRE_ACTIVATION=false \
    GATEHOUSE_RATE_LIMITS__LOGIN_PER_IP=1000000/1s \
    GATEHOUSE_RATE_LIMITS__REGISTER_PER_IP=1000000/1s \
    GATEHOUSE_RATE_LIMITS__LOGIN_FAILURES_PER_ACCOUNT_IP=1000000/1s \
    GATEHOUSE_RATE_LIMITS__LOGIN_FAILURES_PER_ACCOUNT=1000000/1s \
    GATEHOUSE_RATE_LIMITS__UNAUTHENTICATED_PER_IP=1000000/1s \
    GATEHOUSE_TOKENS__DEFAULT_SCOPE="profile email" \
    GATEHOUSE_LOG__LEVEL=warn
}
