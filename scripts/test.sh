#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), runs the static checks, then
# the whole suite on SQLite, then the database tests (store, migrations, claims, and the
# integration tests whose paths through the store differ: marker `db`, see tests/conftest.py)
# again on PostgreSQL, on a private cluster the tests start themselves.
# Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check.sh

# Test processes at once. Most integration tests wait on real timeouts (leases, reapers,
# outages), not on the CPU, so four share two cores well; CONVEYOR_TEST_WORKERS=0 runs serially.
WORKERS=${CONVEYOR_TEST_WORKERS:-4}

# pytest's exit code, except that collecting nothing (5) is a failure too.
run_pytest() {
  local code=0
  # The slowest tests, so a run that creeps towards its time budget says where it goes.
  .venv/bin/pytest -n "$WORKERS" --durations=15 "$@" || code=$?
  if [[ $code -eq 5 ]]; then
    echo "test: pytest collected no tests; that is a failure" >&2
    return 1
  fi
  return $code
}

status=0
echo "test: the whole suite on SQLite" >&2
CONVEYOR_TEST_DB=sqlite run_pytest "$@" || status=$?
echo "test: the database tests on PostgreSQL" >&2
CONVEYOR_TEST_DB=postgresql run_pytest -m db "$@" || { code=$?; ((status)) || status=$code; }
exit $status
