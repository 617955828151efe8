#!/usr/bin/env bash
# The demo: installs what is missing, starts a local coordinator and one agent, runs
# examples/shop.yml to its result, lists the build, then stops both. An argument picks another
# pipeline (scripts/demo.sh examples/other.yml); --delivery runs examples/delivery.yml from a git
# repository it makes: two releases from commit to production through staging and an approval,
# then a rollback of production to the first, and what the records say.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mode=pipeline
pipeline="${1:-examples/shop.yml}"
if [[ $pipeline == --delivery ]]; then mode=delivery; pipeline=examples/delivery.yml; fi
work=$(mktemp -d -t conveyor-demo.XXXXXX)
conveyor=.venv/bin/conveyor
python=.venv/bin/python
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_farm() {
  echo "demo: starting a coordinator (logs in $work/server.log)"
  "$conveyor" server --listen 127.0.0.1:0 --http 127.0.0.1:0 --data-dir "$work/server" >"$work/server.log" 2>&1 &
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
}

# The value at a path of the JSON document on stdin: field 'status', or 'jobs.NAME.status'.
field() {
  "$python" -c '
import json, sys
doc = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    doc = next(j for j in doc if j["name"] == key) if isinstance(doc, list) else doc[key]
print(doc)' "$1"
}

wait_for() { # BUILD FIELD VALUE...: until the build's FIELD is one of VALUEs
  local build=$1 path=$2 value
  shift 2
  for _ in $(seq 1 600); do
    value=$("$conveyor" show "$build" --json | field "$path")
    for wanted in "$@"; do [[ $value == "$wanted" ]] && return; done
    sleep 0.2
  done
  echo "demo: build $build: $path is still $value"; exit 1
}

release() { # VERSION: commit it on main, build it, approve it, see it deployed
  local version=$1 build
  echo "$version" >"$work/shop/version.txt"
  git -C "$work/shop" commit -qam "shop $version"
  echo
  echo "demo: committed shop $version; conveyor run $pipeline --git $work/shop --ref main"
  build=$("$conveyor" run "$pipeline" --git "$work/shop" --ref main --no-follow --json | field id)
  wait_for "$build" jobs.ship-it.status waiting_for_approval
  "$conveyor" show "$build"
  echo "demo: conveyor approve $build ship-it"
  "$conveyor" approve "$build" ship-it --comment "shop $version looks good on staging"
  wait_for "$build" status succeeded failed canceled
  "$conveyor" show "$build"
  "$conveyor" logs "$build" production
}

delivery() {
  export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com
  export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
  git init -q -b main "$work/shop"
  echo v0 >"$work/shop/version.txt"
  git -C "$work/shop" add version.txt
  release v1
  release v2
  echo
  echo "demo: conveyor envs"
  "$conveyor" envs
  echo
  echo "demo: conveyor rollback production   (v2 turned out bad: back to v1, nothing rebuilt)"
  "$conveyor" rollback production
  echo
  echo "demo: conveyor deployments production"
  "$conveyor" deployments production
  echo
  echo "demo: conveyor dora --env production"
  "$conveyor" dora --env production
}

start_farm
set +e
if [[ $mode == delivery ]]; then
  (set -e; delivery)
  code=$?
else
  echo "demo: conveyor run $pipeline"
  "$conveyor" run "$pipeline"
  code=$?
  echo
  "$conveyor" builds
fi
set -e
echo
echo "demo: finished with exit code $code; stopping the coordinator and the agent"
exit $code
