#!/usr/bin/env bash
# Installs everything Conveyor needs on a Debian/Ubuntu machine, idempotently:
# Docker engine and static busybox (apt, when root), a running Docker daemon, the local base image
# conveyor/busybox, a virtualenv in .venv with Conveyor and its dev tools, and the PostgreSQL
# server binaries (the tests start a private cluster of their own; no service is started here).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  log "need root for: $*"; return 1; fi; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [[ -x /bin/busybox ]] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || missing+=(busybox-static)
  command -v git >/dev/null || missing+=(git)
  command -v file >/dev/null || missing+=(file)
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  command -v runuser >/dev/null || missing+=(util-linux)
  # The web view's browser tests drive this Chromium (Playwright never downloads one).
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  # The completion tests load `conveyor completion zsh|fish` in the shells themselves.
  command -v zsh >/dev/null || missing+=(zsh)
  command -v fish >/dev/null || missing+=(fish)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

start_docker() {
  if docker info >/dev/null 2>&1; then return; fi
  if docker info 2>&1 | grep -qi 'permission denied'; then
    log "Docker runs but this user may not use it: sudo usermod -aG docker $USER, then log in again"
    exit 1
  fi
  log "starting the Docker daemon"
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    as_root systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    # A daemon killed without shutting down leaves pid files that stop the next one starting.
    if ! pgrep -x dockerd >/dev/null 2>&1; then
      as_root rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
    fi
    as_root sh -c 'nohup dockerd >/var/log/conveyor-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  log "Docker did not start; see /var/log/conveyor-dockerd.log"
  exit 1
}

make_venv() {
  if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv"
    python3 -m venv .venv
  fi
  local stamp=.venv/.conveyor-installed
  if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    log "installing Conveyor and its dev tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' >&2 || true
    .venv/bin/python -c 'import conveyor, coordinator, agent, grpc, grpc_health, docker, sqlmodel, alembic, psycopg, cryptography, starlette, uvicorn, prometheus_client, httpx, schemathesis' || {
      log "the install into .venv failed"; exit 1; }
    touch "$stamp"
  fi
}

install_packages
start_docker
scripts/build-base-image.sh >&2
make_venv
log "ready"
