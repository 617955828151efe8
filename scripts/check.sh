#!/usr/bin/env bash
# Static checks: lint, format, types, generated code freshness, the agent/coordinator boundary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
status=0
run() { echo "check: $*"; "$@" || status=1; }
run "$bin/ruff" check .
run "$bin/ruff" format --check --quiet .
run "$bin/mypy" --no-error-summary
# Test modules that type-check strictly so far; add a module here once it does.
typed_tests=(tests/conftest.py tests/databases.py tests/harness.py tests/integration/test_upgrade.py
  tests/unit/coordinator/test_store.py tests/unit/coordinator/test_migrations.py
  tests/unit/coordinator/test_claim_race.py tests/unit/coordinator/claim_racer.py
  tests/unit/coordinator/test_engine.py)
run "$bin/mypy" --no-error-summary --strict "${typed_tests[@]}"
run "$bin/python" scripts/gen_protos.py --check
run "$bin/lint-imports" --no-cache
exit $status
