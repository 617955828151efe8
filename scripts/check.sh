#!/usr/bin/env bash
# Static checks: lint, format, types, generated code freshness, the agent/coordinator boundary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
status=0
run() { echo "check: $*"; "$@" || status=1; }
run "$bin/ruff" check .
run "$bin/ruff" format --check --quiet .
# Strict types for the product, the benchmarks and the tests alike (pyproject.toml [tool.mypy]).
run "$bin/mypy" --no-error-summary
run "$bin/python" scripts/gen_protos.py --check
run "$bin/lint-imports" --no-cache
exit $status
