#!/usr/bin/env bash
# Create .venv (once) and install songspace into it with the given extras, e.g. `scripts/setup.sh test`.
# torch is pinned to 2.13.0 in pyproject.toml: the CPU wheel these machines carry (an unpinned
# torch would pull gigabytes of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 | grep -v "WARNING: Location" || true
.venv/bin/python -c "import songspace.cli" # fail here, loudly, if the install did not work
