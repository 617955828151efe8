#!/usr/bin/env bash
# The demo: installs what is missing, starts a local coordinator and one agent, runs
# examples/shop.yml to its result, lists the build, then stops both. Extra arguments pick
# another pipeline: scripts/demo.sh examples/other.yml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
pipeline="${1:-examples/shop.yml}"
work=$(mktemp -d -t conveyor-demo.XXXXXX)
conveyor=.venv/bin/conveyor
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "demo: starting a coordinator (logs in $work/server.log)"
"$conveyor" server --listen 127.0.0.1:0 --data-dir "$work/server" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $work/server/server.addr ]] && break; sleep 0.1; done
[[ -s $work/server/server.addr ]] || { cat "$work/server.log"; exit 1; }
export CONVEYOR_ADDR CONVEYOR_TOKEN CONVEYOR_AGENT_TOKEN
CONVEYOR_ADDR=$(cat "$work/server/server.addr")
CONVEYOR_TOKEN=$(cat "$work/server/client-token")
CONVEYOR_AGENT_TOKEN=$(cat "$work/server/agent-token")

echo "demo: starting an agent (logs in $work/agent.log)"
# --allow-local-git: the demo's pipelines may build from a repository on this machine.
"$conveyor" agent --name demo-agent --labels os=linux --concurrency 2 --allow-local-git \
  --work-dir "$work/agent" >"$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  "$conveyor" agents --json 2>/dev/null | grep -q '"online"' && break
  sleep 0.1
done

echo "demo: conveyor run $pipeline"
set +e
"$conveyor" run "$pipeline"
code=$?
set -e
echo
"$conveyor" builds
echo
echo "demo: build finished with exit code $code; stopping the coordinator and the agent"
exit $code
