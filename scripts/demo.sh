#!/usr/bin/env bash
# The demo: installs what is missing, starts a local coordinator and one agent, runs
# examples/shop.yml to its result, lists the build, then stops both. An argument picks another
# pipeline (scripts/demo.sh examples/other.yml); --delivery carries examples/delivery.yml from a
# git push to production: a bare repository stands in for the forge (its hook sends a signed
# push webhook, as GitHub would), the coordinator watches it (conveyor repo add), and each push
# of a release builds, deploys to staging, waits for an approval, and deploys to production;
# then production is rolled back to the first release, and the records say what happened.
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
  for _ in $(seq 1 600); do [[ -s $work/server/server.addr ]] && break; sleep 0.1; done
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

# The build a push started: the one whose trigger is COMMIT.
build_of() {
  local commit=$1 id
  for _ in $(seq 1 300); do
    id=$("$conveyor" builds --json | "$python" -c '
import json, sys
print(next((b["id"] for b in json.load(sys.stdin) if (b["trigger"] or {}).get("commit") == sys.argv[1]), ""))' "$commit")
    [[ -n $id ]] && { echo "$id"; return; }
    sleep 0.1
  done
  echo "demo: no build started for commit $commit" >&2; exit 1
}

release() { # VERSION: commit it, push it, approve what it builds, see it deployed
  local version=$1 build commit
  echo "$version" >"$work/shop/version.txt"
  git -C "$work/shop" commit -qam "shop $version"
  commit=$(git -C "$work/shop" rev-parse HEAD)
  echo
  echo "demo: committed shop $version; git push origin main"
  git -C "$work/shop" push -q origin main
  build=$(build_of "$commit")
  echo "demo: the push started build $build"
  wait_for "$build" jobs.ship-it.status waiting_for_approval
  "$conveyor" show "$build"
  echo "demo: conveyor approve $build ship-it"
  "$conveyor" approve "$build" ship-it --comment "shop $version looks good on staging"
  wait_for "$build" status succeeded failed canceled
  "$conveyor" show "$build"
  "$conveyor" logs "$build" production
}

# The forge: a bare repository whose post-receive hook POSTs a push webhook signed as GitHub
# signs it (X-Hub-Signature-256) to the coordinator's /hooks/git/shop.
make_forge() {
  local secret=$1 hook="$work/forge/shop.git/hooks/post-receive"
  git init -q --bare -b main "$work/forge/shop.git"
  cat >"$hook" <<HOOK
#!$PWD/$python
import hashlib, hmac, json, sys, urllib.request
old, new, ref = sys.stdin.readline().split()
body = json.dumps({"ref": ref, "before": old, "after": new}).encode()
signature = "sha256=" + hmac.new(b"$secret", body, hashlib.sha256).hexdigest()
headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
           "X-Hub-Signature-256": signature}
url = "http://$(cat "$work/server/http.addr")/hooks/git/shop"
urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10)
HOOK
  chmod +x "$hook"
}

delivery() {
  export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com
  export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
  local secret
  secret=$("$python" -c 'import secrets; print(secrets.token_hex(20))')
  make_forge "$secret"
  git clone -q "$work/forge/shop.git" "$work/shop" 2>/dev/null
  cp "$pipeline" "$work/shop/.conveyor.yml"
  echo v0 >"$work/shop/version.txt"
  git -C "$work/shop" add .conveyor.yml version.txt
  git -C "$work/shop" commit -qm "shop v0"
  git -C "$work/shop" push -q origin main 2>/dev/null  # the coordinator does not watch it yet
  echo "demo: conveyor repo add shop $work/forge/shop.git --webhook-secret ..."
  "$conveyor" repo add shop "$work/forge/shop.git" --webhook-secret "$secret"
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
