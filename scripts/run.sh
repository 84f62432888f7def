#!/bin/bash
# Sets up a fresh Debian 12 machine, builds hvtel and runs the agent:
#   sudo ./scripts/run.sh [serve options]      (default: --listen 0.0.0.0:9477)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
exec ./build/hvtel serve "$@"
