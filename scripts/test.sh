#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), runs the static checks, then
# the whole suite with real processes and real Docker. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check.sh
set +e
.venv/bin/pytest "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $code
