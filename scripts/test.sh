#!/usr/bin/env bash
# Run the test suite in .venv. pytest's exit code 5 ("no tests ran") is a
# failure here, never a silent success.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; failing" >&2
  exit 1
fi
exit "$rc"
