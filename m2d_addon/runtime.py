"""Finding, checking and installing the Python packages the engine needs (PyTorch, librosa …).

They are not part of Blender's Python. Two ways to provide them:

* **Install** (one click in the preferences): pip installs the pinned packages
  of the extension's ``requirements.txt`` into ``<extension user dir>/site-packages``;
  the engine then runs in Blender's own Python with that folder on its path.
  Blender's own process never imports them (its NumPy stays untouched).
* **Existing environment**: the preferences name a Python (or a virtual
  environment folder) that already has them.

PyPI's PyTorch is the right build on Linux (CUDA on x86_64) and macOS (MPS); on
Windows it is CPU-only, so with an NVIDIA GPU present PyTorch's CUDA index is added.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from ..inference.errors import M2DError
from . import worker_client
from .common import EXTENSION_DIR, redraw_while, user_dir

RUNTIME_PACKAGES = ("torch", "numpy", "librosa", "soundfile", "soxr", "scipy", "safetensors", "smplx")
"""The requirements.txt entries the engine process needs."""
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
"""PyTorch's CUDA wheels, used on Windows with an NVIDIA GPU (PyPI's Windows torch is CPU-only)."""
SITE_PACKAGES = "site-packages"


# ----------------------------------------------------------------------------- which Python


def resolve_python(path: str) -> str:
    """The interpreter to run the engine with: ``path`` (a Python, or a venv/conda folder) or Blender's own."""
    if not path:
        return sys.executable
    p = Path(os.path.expanduser(path))
    if p.is_dir():
        for candidate in ("bin/python3", "bin/python", "Scripts/python.exe", "python.exe", "python3", "python"):
            if (p / candidate).is_file():
                return str(p / candidate)
        raise M2DError(f"No Python found in the folder {p}. Give the environment's python executable.")
    if not p.is_file():
        raise M2DError(f"The Python environment {p} does not exist. Fix the path in the extension's preferences.")
    return str(p)


def installed_site_packages(create: bool = False) -> Path:
    return user_dir(SITE_PACKAGES) if create else Path(user_dir()) / SITE_PACKAGES


def worker_setup(python_path: str) -> tuple[str, dict, str]:
    """(python, environment, working folder) for running :mod:`inference.worker`.

    Byte-code and numba caches go to the user folder, never into the extension's.
    """
    python = resolve_python(python_path)
    paths = [str(EXTENSION_DIR)]
    site = installed_site_packages()
    if not python_path and site.is_dir():
        paths.append(str(site))
    env = worker_client.env_with_pythonpath(os.environ, paths)
    env["PYTHONPYCACHEPREFIX"] = str(user_dir("pycache"))
    env.setdefault("NUMBA_CACHE_DIR", str(user_dir("numba-cache")))
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONHOME", None)
    return python, env, str(user_dir("work"))


# ----------------------------------------------------------------------------- what was found


class Probe:
    """The last check of the runtime, run on a thread so that the interface never waits."""

    def __init__(self):
        self.state = "unknown"  # unknown | checking | ok | missing | error
        self.info: dict = {}
        self.message = "Not checked yet"
        self._thread = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, python_path: str) -> None:
        """Check now (blocking)."""
        self.state, self.message = "checking", "Checking the Python environment…"
        try:
            python, env, cwd = worker_setup(python_path)
            info = worker_client.run_probe(python, env, cwd)
        except M2DError as exc:
            self.state, self.info, self.message = "error", {}, str(exc)
            return
        self.info = info
        self.state = "missing" if info.get("missing") else "ok"
        self.message = describe(info)

    def start(self, python_path: str) -> None:
        """Check on a thread (the preferences draw the result when it arrives)."""
        if self.busy:
            return
        self.state, self.message = "checking", "Checking the Python environment…"
        self._thread = threading.Thread(target=self.run, args=(python_path,), daemon=True, name="m2d-probe")
        self._thread.start()
        redraw_while(lambda: self.busy)


def describe(info: dict) -> str:
    """One line for the preferences: torch version and GPU, or what is missing."""
    if info.get("missing"):
        text = "Missing: " + ", ".join(info["missing"])
        return text + (f" ({info['error']})" if info.get("error") else "")
    device = info.get("gpu") or "CPU only"
    return f"PyTorch {info.get('torch')} · {device} · Python {info.get('python')}"


PROBE = Probe()


# ----------------------------------------------------------------------------- installing


def runtime_requirements(path: Path | None = None) -> list[str]:
    """The pinned engine packages from the extension's requirements.txt."""
    path = Path(path) if path else EXTENSION_DIR / "requirements.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise M2DError(f"{path} is missing from the extension; reinstall Music2Dance.") from None
    out = []
    for line in lines:
        spec = line.split("#", 1)[0].strip()
        name = re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower()
        if spec and not spec.startswith("-") and name in RUNTIME_PACKAGES:
            out.append(spec)
    return out


def has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


def pip_command(python: str, target: str, requirements: list[str], system: str | None = None,
                nvidia: bool | None = None, pip: list[str] | None = None) -> list[str]:
    """The pip command line that installs ``requirements`` into ``target``.

    ``pip``: how to run pip (default ``python -m pip``); ``system``/``nvidia``
    default to this machine's.
    """
    system = system or platform.system()
    nvidia = has_nvidia_gpu() if nvidia is None else nvidia
    cmd = list(pip or [python, "-m", "pip"]) + [
        "install", "--upgrade", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
        "--target", target, *requirements,
    ]
    if system == "Windows" and nvidia:
        cmd += ["--extra-index-url", TORCH_CUDA_INDEX]
    return cmd


def pip_runner(python: str) -> list[str]:
    """How to run pip with ``python``: its own pip, or the one bundled with Python's ensurepip."""
    check = subprocess.run([python, "-m", "pip", "--version"], capture_output=True)
    if check.returncode == 0:
        return [python, "-m", "pip"]
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        import ensurepip

        wheels = sorted(Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl"))
        if wheels:
            return [python, str(wheels[-1] / "pip")]  # pip runs from its wheel
    raise M2DError(f"{python} has no pip. Use an existing Python environment instead (see the preferences).")


class Installer:
    """pip, run as a subprocess; its last output line is the status."""

    def __init__(self):
        self.proc = None
        self.lines: list[str] = []
        self.returncode = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.returncode is None

    @property
    def status(self) -> str:
        return self.lines[-1] if self.lines else "Starting pip…"

    def start(self, python: str) -> None:
        target = installed_site_packages(create=True)
        cmd = pip_command(python, str(target), runtime_requirements(), pip=pip_runner(python))
        self.lines, self.returncode = [" ".join(cmd[:4]) + " …"], None
        flags = subprocess.CREATE_NO_WINDOW if sys.platform == "win32" else 0
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     encoding="utf-8", errors="replace", creationflags=flags,
                                     cwd=str(user_dir("work")))
        self._thread = threading.Thread(target=self._read, daemon=True, name="m2d-pip")
        self._thread.start()
        redraw_while(lambda: self.running)

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            if line:
                self.lines.append(line)
                print(f"[music2dance pip] {line}", file=sys.stderr)
        self.returncode = self.proc.wait()

    def cancel(self) -> None:
        if self.running:
            self.proc.kill()

    def wait(self) -> int:
        if self._thread is not None:
            self._thread.join()
        return self.returncode


INSTALLER = Installer()
