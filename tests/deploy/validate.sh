#!/bin/bash
# Validates deploy/: Prometheus rules with promtool, YAML syntax of the DaemonSet.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
promtool check rules "$root/deploy/prometheus-rules.yaml"
python3 - "$root/deploy/daemonset.yaml" <<'PY'
import sys, json
text = open(sys.argv[1]).read()
try:
    import yaml
except ImportError:
    # No PyYAML: at least check indentation-free structure markers.
    assert "kind: DaemonSet" in text and "containerPort: 9477" in text
    sys.exit(0)
doc = yaml.safe_load(text)
assert doc["kind"] == "DaemonSet"
c = doc["spec"]["template"]["spec"]["containers"][0]
assert isinstance(c["ports"][0]["containerPort"], int)
assert c["securityContext"]["readOnlyRootFilesystem"] is True
PY
echo "deploy/ OK"
