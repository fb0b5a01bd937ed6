#!/usr/bin/env bash
# Set up the test environments (if missing) and run every test:
#   .venv            Blender 4.5 LTS (bpy 4.5.15) + the engine's packages: engine tests + add-on tests
#   .venv-bpy5       Blender 5.0     (bpy 5.0.1)  + the engine's packages: add-on tests
#   .venv-plain-4.5  only bpy 4.5.15, as in a user's Blender: install, enable, Install runtime, Generate
#   .venv-plain-5.0  only bpy 5.0.1, the same
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
setup_plain() {  # setup_plain VENV REQUIREMENTS: only the bpy and pytest pins of REQUIREMENTS
    if [ ! -x "$1/bin/python" ] || ! "$1/bin/python" -c "import bpy, pytest" 2>/dev/null; then
        echo "== setting up $1 with only bpy and pytest from $2"
        "$PY" -m venv "$1"
        "$1/bin/pip" install --quiet --disable-pip-version-check $(grep -oE '^(bpy|pytest)==[^ ]+' "$2")
    fi
}
setup .venv requirements-dev.txt
setup .venv-bpy5 requirements-bpy5.txt
setup_plain .venv-plain-4.5 requirements-dev.txt
setup_plain .venv-plain-5.0 requirements-bpy5.txt

export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/cache/numba}"
version() { "$1/bin/python" -c 'import bpy; print(bpy.app.version_string)' 2>/dev/null; }
echo "== engine and add-on tests, Blender 4.5 (bpy $(version .venv))"
.venv/bin/python -m pytest tests "$@"
echo "== add-on tests, Blender 5.0 (bpy $(version .venv-bpy5))"
.venv-bpy5/bin/python -m pytest tests/addon "$@"
for plain in .venv-plain-4.5 .venv-plain-5.0; do
    echo "== first run in a plain Blender (bpy $(version $plain), no engine packages)"
    "$plain/bin/python" -m pytest --confcutdir tests/plain_blender tests/plain_blender "$@"
done
