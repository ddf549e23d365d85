#!/usr/bin/env bash
# Creates (once) a virtual environment with OpenSpace's Python client, `openspace-api` from PyPI,
# at the version the tests were written against, and prints its python's path. Reused while the
# pinned version is installed; the tests call this, and so does `make deps` (scripts/setup.sh).
set -euo pipefail
version=0.9.1
venv="${OPENSPACE_PYAPI_VENV:-$HOME/.cache/openspace-k8s/pyapi-$version}"
if ! "$venv/bin/python" -c "import openspace" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openspace-api==$version" >&2
fi
echo "$venv/bin/python"
