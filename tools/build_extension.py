"""Validate and build the extension zip with the ``blender_ext.py`` that ships inside the ``bpy`` module.

    python tools/build_extension.py               # -> dist/music2dance-<version>.zip
    python tools/build_extension.py --output-dir /tmp/out

No Blender binary is needed. Exit status 0 when the manifest validates and the
zip is built and validates too.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def blender_ext_script() -> Path:
    """``blender_ext.py`` of the installed ``bpy`` module (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: the bpy module is not installed (pip install -r requirements-dev.txt).")
    base = list(spec.submodule_search_locations)[0]
    hits = sorted(glob.glob(os.path.join(base, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")))
    if not hits:
        raise SystemExit(f"error: blender_ext.py not found under {base}.")
    return Path(hits[-1])


def valid_tags_file(script: Path) -> Path | None:
    tags = script.parents[3] / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    return tags if tags.is_file() else None


def run(script: Path, *args: str) -> None:
    cmd = [sys.executable, str(script), *args]
    done = subprocess.run(cmd, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args[:1])} failed (exit status {done.returncode}).")


def build(output_dir: Path) -> Path:
    """Validate the sources, build the zip into ``output_dir``, validate the zip; return its path."""
    script = blender_ext_script()
    tags = valid_tags_file(script)
    tag_args = [f"--valid-tags={tags}"] if tags else []
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = (REPO / "blender_manifest.toml").read_text()
    ident = manifest.split('\nid = "', 1)[1].split('"', 1)[0]
    version = manifest.split('\nversion = "', 1)[1].split('"', 1)[0]
    zip_path = output_dir / f"{ident}-{version}.zip"
    run(script, "validate", *tag_args, str(REPO))
    run(script, "build", "--source-dir", str(REPO), "--output-filepath", str(zip_path), *tag_args)
    run(script, "validate", *tag_args, str(zip_path))
    return zip_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default=str(REPO / "dist"), help="where to write the zip (default dist/)")
    args = parser.parse_args(argv)
    print(build(Path(args.output_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
