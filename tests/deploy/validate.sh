#!/bin/bash
# Checks deploy/: YAML style, the alert rules and their unit tests (every
# alert has a case where it fires and one where it stays silent), the
# rendered PrometheusRule, the Grafana dashboard, runbooks, Alertmanager routing, the Prometheus
# configuration, and the Kubernetes manifests against their schemas.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
deploy=$root/deploy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

yamllint -s -c "$root/.yamllint" "$deploy" "$root/tests/deploy"
promtool check rules "$deploy/prometheus/hvtel-rules.yaml"
promtool test rules "$root/tests/deploy/hvtel-rules.test.yaml"
"$deploy/prometheus/render.py" --check
"$deploy/grafana/build.py" --check
# Every dashboard query parses (they return data in the lab case dashboard_queries).
python3 - "$deploy/grafana/hvtel.json" > "$tmp/dashboard-rules.yaml" <<'PY'
import json, re, sys, yaml
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
values = {"zone": "z", "rack": "r", "hypervisor": "h", "instance": "i", "__rate_interval": "1m"}
rules = [{"record": f"dashboard:q{i}", "expr": re.sub(r"\$(__rate_interval|zone|rack|hypervisor|instance)\b",
                                                     lambda m: values[m.group(1)], e)}
         for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout)
PY
promtool check rules "$tmp/dashboard-rules.yaml" >/dev/null

python3 - "$root" <<'PY'
import pathlib, sys, yaml
root = pathlib.Path(sys.argv[1])
rules = yaml.safe_load((root / "deploy/prometheus/hvtel-rules.yaml").read_text())
tests = yaml.safe_load((root / "tests/deploy/hvtel-rules.test.yaml").read_text())
runbooks = (root / "docs/runbooks/README.md").read_text()
fires, silent = set(), set()
for group in tests["tests"]:
    for case in group.get("alert_rule_test", []):
        (fires if case.get("exp_alerts") else silent).add(case["alertname"])
errors = []
alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
for r in alerts:
    name = r["alert"]
    ann = r.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        if not ann.get(key):
            errors.append(f"{name}: no {key}")
    if r.get("labels", {}).get("severity") not in ("critical", "warning"):
        errors.append(f"{name}: severity must be critical or warning")
    url = ann.get("runbook_url", "")
    if not url.endswith(f"/docs/runbooks/{name}.md") or not (root / f"docs/runbooks/{name}.md").is_file():
        errors.append(f"{name}: runbook_url {url!r} is not docs/runbooks/{name}.md")
    if f"`{name}`" not in runbooks:
        errors.append(f"{name}: not listed in docs/runbooks/README.md")
    if name not in fires:
        errors.append(f"{name}: no promtool case where it fires")
    if name not in silent:
        errors.append(f"{name}: no promtool case where it stays silent")
for e in errors:
    print("deploy:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"{len(alerts)} alerts: annotations, runbooks, firing and silent cases OK")
PY

am=$deploy/alertmanager/alertmanager.yml
amtool check-config "$am"
route() {  # route EXPECTED_RECEIVER LABEL=VALUE...
  local want=$1
  shift
  amtool config routes test --config.file="$am" --verify.receivers="$want" "$@" 2>/dev/null >/dev/null ||
    { echo "alertmanager: $* does not route to $want" >&2; exit 1; }
}
route pager alertname=RackDown severity=critical zone=z1 rack=r1
route pager alertname=HypervisorDown severity=critical zone=z1 rack=r1 hypervisor=hv1
route pager alertname=OvsDirtyFlows severity=critical hypervisor=hv1
route tickets alertname=HvtelEventsLost severity=warning hypervisor=hv1

# Debian's promtool is built without Kubernetes discovery: check the rest of
# the configuration (relabeling included) with file discovery in its place.
sed 's/kubernetes_sd_configs:/file_sd_configs:/; /- role: pod/,/node: true/c\      - files: [targets.json]' \
  "$deploy/prometheus/prometheus.yml" >"$tmp/prometheus.yml"
cp "$deploy/prometheus/hvtel-rules.yaml" "$tmp/"
promtool check config "$tmp/prometheus.yml"

# The manifests against the Kubernetes and Prometheus-operator schemas
# (npm kubernetes-models, installed by scripts/install-deps.sh).
[ -d "$root/tests/deploy/schema/node_modules" ] ||
  { echo "deploy: tests/deploy/schema/node_modules missing: run scripts/install-deps.sh" >&2; exit 1; }
node "$root/tests/deploy/schema/validate.mjs" "$deploy"/kubernetes/*.yaml

python3 - "$deploy/kubernetes/daemonset.yaml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["kind"] == "DaemonSet"
c = doc["spec"]["template"]["spec"]["containers"][0]
assert isinstance(c["ports"][0]["containerPort"], int)
assert c["securityContext"]["readOnlyRootFilesystem"] is True
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
PY
echo "deploy/ OK"
