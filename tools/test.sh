#!/usr/bin/env bash
# Set up both test environments (if missing) and run every test:
#   .venv       Blender 4.5 LTS (bpy 4.5.15): engine tests + add-on tests
#   .venv-bpy5  Blender 5.0     (bpy 5.0.1):  add-on tests
# Usage: bash tools/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

setup() {  # setup VENV REQUIREMENTS
    if [ ! -x "$1/bin/python" ] || ! "$1/bin/python" -c "import bpy, torch, librosa, pytest" 2>/dev/null; then
        echo "== setting up $1 from $2"
        "$PY" -m venv "$1"
        "$1/bin/pip" install --quiet --disable-pip-version-check -r "$2"
    fi
}
setup .venv requirements-dev.txt
setup .venv-bpy5 requirements-bpy5.txt

export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/cache/numba}"
echo "== engine and add-on tests, Blender 4.5 (bpy $(.venv/bin/python -c 'import bpy; print(bpy.app.version_string)' 2>/dev/null))"
.venv/bin/python -m pytest tests "$@"
echo "== add-on tests, Blender 5.0 (bpy $(.venv-bpy5/bin/python -c 'import bpy; print(bpy.app.version_string)' 2>/dev/null))"
.venv-bpy5/bin/python -m pytest tests/addon "$@"
