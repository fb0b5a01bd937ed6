"""Finding, checking and installing the Python packages the engine needs (PyTorch, librosa …).

They are not part of Blender's Python, and Blender's own process never imports
them: they are used by the engine's worker process only. Two ways to provide them:

* **Install** (one click in the preferences): pip installs the pinned packages
  of the extension's ``requirements.txt`` into ``<extension user dir>/site-packages``,
  from the internet (only with Blender's *Allow Online Access* on) or from a
  folder of wheels prepared on another machine (no internet needed).
* **Existing environment**: the preferences name a Python (or a virtual
  environment folder) that already has them.

Which PyTorch build pip gets is chosen here (:func:`plan_install`): PyPI's
``torch`` on Linux is the CUDA build with several GB of CUDA libraries, so
without an NVIDIA GPU the CPU build comes from PyTorch's own index; on Windows
PyPI's build is CPU-only, so with an NVIDIA GPU the CUDA index is used.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bpy

from ..inference.errors import M2DError
from . import worker_client
from .common import ADDON_PACKAGE, EXTENSION_DIR, preferences, redraw_while, user_dir

RUNTIME_PACKAGES = ("torch", "numpy", "librosa", "soundfile", "soxr", "scipy", "safetensors", "smplx")
"""The requirements.txt entries the engine process needs."""
TORCH_INDEX = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "cu128": "https://download.pytorch.org/whl/cu128",
}
"""PyTorch's own package indexes: its CPU-only builds, and the CUDA builds for Windows."""
TORCH_BUILDS = (
    ("AUTO", "Automatic", "The CPU build without an NVIDIA GPU, the CUDA build with one (Apple GPUs: PyPI's build)"),
    ("CPU", "CPU", "PyTorch's CPU-only build (about 0.2 GB): no GPU is used"),
    ("CUDA", "CUDA (NVIDIA)", "PyTorch's CUDA build for NVIDIA GPUs (about 3 GB with its CUDA libraries)"),
    ("PIP", "As pip is configured", "Whatever torch==<pinned version> your pip's index or mirror serves; no "
                                    "PyTorch index is added"),
)
"""The ``torch_build`` preference's choices: (identifier, name, description)."""
DOWNLOAD_GB = {"cpu": 0.3, "cuda": 3.3, "default": 0.3}
"""Approximate download of the whole runtime per PyTorch build (torch + librosa, SciPy, numba …), in GB."""
PIP_CHECK_SECONDS = 60.0
"""How long ``pip --version`` may take before the Python is taken to have no working pip."""
SITE_PACKAGES = "site-packages"
LOG_NAME = "install.log"


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


def worker_setup(python_path: str, site: Path | None = None) -> tuple[str, dict, str]:
    """(python, environment, working folder) for running :mod:`inference.worker`.

    ``site``: installed packages to put on the path (default: the installed
    runtime, when Blender's own Python is used). Byte-code and numba caches go
    to the user folder, never into the extension's.
    """
    python = resolve_python(python_path)
    paths = [str(EXTENSION_DIR)]
    site = site if site is not None else (installed_site_packages() if not python_path else None)
    if site is not None and site.is_dir():
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
            info = worker_client.run_probe(*worker_setup(python_path))
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


# ----------------------------------------------------------------------------- what to install


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
    return shutil.which("nvidia-smi") is not None or os.path.exists("/proc/driver/nvidia/version")


@dataclass(frozen=True)
class InstallPlan:
    """What Install runtime will run, described for the user before it starts."""

    python: str
    """The Python whose pip installs (Blender's own)."""
    args: list[str]
    """pip's arguments after ``install --target FOLDER``."""
    target: Path
    """Where the runtime goes."""
    build: str
    """Which PyTorch build, in words ("CPU build", "CUDA build" …)."""
    source: str
    """Where the packages come from, in words."""
    download_gb: float | None
    """Approximate size of what pip fetches; None when installing from a wheel folder."""
    wheels: str = ""
    """The local wheel folder, or "" when installing from the internet."""

    def command(self, into: Path | None = None, pip: list[str] | None = None) -> list[str]:
        """The pip command line that installs into ``into`` (default :attr:`target`); ``pip``: how
        to run pip (default ``python -m pip``)."""
        runner = pip or [self.python, "-m", "pip"]
        return [*runner, "install", "--target", str(into or self.target), *self.args]

    @property
    def online(self) -> bool:
        return not self.wheels

    def summary(self) -> str:
        size = f", about {self.download_gb:.1f} GB to download" if self.download_gb else ""
        return f"PyTorch {self.build}{size}, from {self.source}"


def _pinned_torch(requirements: list[str]) -> str:
    for spec in requirements:
        if re.match(r"torch\s*==", spec):
            return spec.split("==", 1)[1].strip()
    raise M2DError("requirements.txt pins no torch version; reinstall Music2Dance.")


def _wheel_folder_build(folder: Path) -> str:
    """The build of the torch wheel in a wheel folder, in words."""
    wheels = sorted(folder.glob("torch-*.whl"))
    if not wheels:
        raise M2DError(f"The wheel folder {folder} holds no torch wheel. Prepare it with pip download "
                       "as the README's 'Installing without internet' section shows.")
    version = wheels[-1].name.split("-")[1]
    local = version.partition("+")[2]
    kind = "CPU build" if local == "cpu" else f"CUDA build ({local})" if local.startswith("cu") else "build"
    return f"{version.partition('+')[0]} {kind}"


def plan_install(python: str, target: Path, requirements: list[str], torch_build: str = "AUTO",
                 wheels: str = "", system: str | None = None, nvidia: bool | None = None) -> InstallPlan:
    """The pip command that installs ``requirements`` into ``target``, and how to describe it.

    ``torch_build``: one of :data:`TORCH_BUILDS`; ``wheels``: a folder of wheels
    to install from with no index (offline); ``system``/``nvidia`` default to
    this machine's.
    """
    system = system or platform.system()
    version = _pinned_torch(requirements)
    base = ["--upgrade", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
            "--only-binary", ":all:"]
    if wheels:
        folder = Path(os.path.expanduser(wheels))
        if not folder.is_dir():
            raise M2DError(f"The wheel folder {folder} does not exist. Fix the path in the preferences or clear it.")
        build = _wheel_folder_build(folder)
        return InstallPlan(python, base + ["--no-index", "--find-links", str(folder), *requirements], target,
                           build, f"the wheel folder {folder}", None, str(folder))
    if torch_build == "AUTO":
        if system == "Darwin":
            torch_build = "PIP"
        else:
            torch_build = "CUDA" if (has_nvidia_gpu() if nvidia is None else nvidia) else "CPU"
    if torch_build == "CUDA" and system == "Darwin":
        raise M2DError("PyTorch has no CUDA build for macOS. Choose Automatic as PyTorch build.")
    index = None
    if torch_build == "CPU" and system != "Darwin":
        index, build, size = TORCH_INDEX["cpu"], f"{version} CPU build", DOWNLOAD_GB["cpu"]
        requirements = [f"torch=={version}+cpu" if re.match(r"torch\s*==", r) else r for r in requirements]
    elif torch_build == "CUDA":
        index = TORCH_INDEX["cu128"] if system == "Windows" else None  # PyPI's Linux torch is the CUDA build
        build, size = f"{version} CUDA build", DOWNLOAD_GB["cuda"]
    else:
        build, size = f"{version} as your pip's index serves it", None
        if system == "Darwin":
            build, size = f"{version} (Apple GPUs through MPS)", DOWNLOAD_GB["default"]
    source = "PyPI and PyTorch's index" if index else "PyPI (or your pip's configured index)"
    extra = ["--extra-index-url", index] if index else []
    return InstallPlan(python, base + extra + requirements, target, build, source, size)


def install_plan(context=None) -> InstallPlan:
    """Install runtime's plan for the preferences' choices (raises M2DError if they cannot work)."""
    prefs = preferences(context)
    return plan_install(sys.executable, installed_site_packages(), runtime_requirements(),
                        torch_build=prefs.torch_build, wheels=prefs.wheels_path)


def online_access_problem(app=None) -> str | None:
    """Why Install runtime may not go online now (Blender's *Allow Online Access*), or None.

    ``app``: ``bpy.app`` (or a stand-in with its ``online_access`` and ``online_access_override``).
    ``online_access_override`` is set when the command line decided (``--offline-mode``, ``--online-mode``).
    """
    app = app or bpy.app
    if app.online_access:
        return None
    if getattr(app, "online_access_override", False):
        return ("Blender was started in offline mode (--offline-mode), so Install runtime may not go online. "
                "Restart Blender without it, or install from a wheel folder (see the README).")
    return ("Online access is off (Preferences › System › Network › Allow Online Access), so Install runtime "
            "may not download. Turn it on, or install from a wheel folder (see the README).")


def pip_runner(python: str) -> list[str]:
    """How to run pip with ``python``: its own pip, or the one bundled with Python's ensurepip."""
    try:
        check = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, timeout=PIP_CHECK_SECONDS)
        has_pip = check.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        has_pip = False
    if has_pip:
        return [python, "-m", "pip"]
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        import ensurepip

        wheels = sorted(Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl"))
        if wheels:
            return [python, str(wheels[-1] / "pip")]  # pip runs from its wheel
    raise M2DError(f"{python} has no pip. Use an existing Python environment instead (see the preferences).")


def check_writable(folder: Path) -> None:
    """Raise M2DError unless files can be created in ``folder``'s parent (where the runtime goes)."""
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".m2d-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise M2DError(f"Cannot write to {parent} ({exc.strerror or exc}); the runtime cannot be installed "
                       "there. Free some space or fix the folder's permissions, or use an existing Python "
                       "environment.") from None


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


# ----------------------------------------------------------------------------- installing


class Installer:
    """pip, run as a subprocess into a fresh folder that replaces the runtime only once it imports.

    A failed or cancelled install leaves the runtime that was there before
    untouched. pip's whole output goes to :func:`log_path`; its last line is the status.
    """

    def __init__(self):
        self.proc = None
        self.lines: list[str] = []
        self.returncode = None
        self.failure = ""
        """Why the last install failed (for the report), "" if it did not."""
        self.result = ""
        """What the last successful install put in place, in words."""
        self.plan: InstallPlan | None = None
        self._thread = None
        self._ended = threading.Event()
        """Set when the install thread has its result (an Event: a join interrupted by Ctrl+C can make
        Thread.is_alive() say False while the thread still runs)."""
        self._ended.set()
        self._cancelled = False

    @property
    def running(self) -> bool:
        return not self._ended.is_set()

    @property
    def status(self) -> str:
        return self.lines[-1] if self.lines else "Starting pip…"

    def tail(self, count: int = 3) -> list[str]:
        return [line for line in self.lines if line.strip()][-count:]

    def start(self, plan: InstallPlan, before=None) -> None:
        """Run ``plan`` on a thread; raises M2DError (nothing started) if it cannot begin.

        ``before``: called once the checks passed, just before pip starts.
        """
        if plan.online and (problem := online_access_problem()):
            raise M2DError(problem)
        check_writable(plan.target)
        pip = pip_runner(plan.python)
        staging = plan.target.with_name(plan.target.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        command = plan.command(into=staging, pip=pip)
        user_dir("logs")
        log = log_path()
        try:
            log_file = open(log, "w", encoding="utf-8")
        except OSError as exc:
            raise M2DError(f"Cannot write the install log {log} ({exc.strerror or exc}).") from None
        log_file.write(f"Music2Dance runtime install, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                       f"{plan.summary()}\n$ {' '.join(command)}\n\n")
        log_file.flush()
        if before is not None:
            before()
        flags = subprocess.CREATE_NO_WINDOW if sys.platform == "win32" else 0
        try:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                         encoding="utf-8", errors="replace", creationflags=flags,
                                         cwd=str(user_dir("work")))
        except OSError as exc:
            log_file.close()
            raise M2DError(f"Cannot start pip ({exc.strerror or exc}).") from None
        self.plan, self.returncode, self.failure, self.result, self._cancelled = plan, None, "", "", False
        self.lines = [f"Installing {plan.summary()}…"]
        self._ended.clear()
        self._thread = threading.Thread(target=self._run, args=(staging, log_file), daemon=True, name="m2d-pip")
        self._thread.start()
        redraw_while(lambda: self.running)

    def _run(self, staging: Path, log_file) -> None:
        code = None
        try:
            with log_file:
                try:
                    for line in self.proc.stdout:
                        log_file.write(line)
                        line = line.strip()
                        if line:
                            self.lines.append(line)
                    code = self.proc.wait()
                    if self._cancelled:
                        self._fail(staging, log_file, "Cancelled; the runtime that was there before is unchanged.")
                    elif code != 0:
                        self._fail(staging, log_file, f"pip failed (exit status {code}): " + " | ".join(self.tail()))
                    else:
                        self.lines.append("Checking that the engine can import what was installed…")
                        self._verify_and_swap(staging, log_file)
                except Exception as exc:  # this thread must always end with a result the operator can report
                    self._fail(staging, log_file, f"The installation failed ({type(exc).__name__}: {exc}).")
        finally:
            self.returncode = 0 if not self.failure else (code or 1)
            self._ended.set()

    def _fail(self, staging: Path, log_file, message: str) -> None:
        shutil.rmtree(staging, ignore_errors=True)
        self.failure = f"{message} Full log: {log_path()}"
        log_file.write(f"\n{self.failure}\n")

    def _verify_and_swap(self, staging: Path, log_file) -> None:
        try:
            info = worker_client.run_probe(*worker_setup("", site=staging), timeout=300.0)
        except M2DError as exc:
            return self._fail(staging, log_file, f"The installed packages do not work: {exc}")
        log_file.write(f"\nprobe: {info}\n")
        if info.get("missing"):
            return self._fail(staging, log_file, f"The installed packages do not work: {describe(info)}")
        target = self.plan.target
        old = target.with_name(target.name + ".old")
        try:
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                target.rename(old)
            staging.rename(target)
        except OSError as exc:
            return self._fail(staging, log_file, f"Cannot move the installed packages into {target} "
                                                 f"({exc.strerror or exc}).")
        shutil.rmtree(old, ignore_errors=True)
        size = folder_size(target) / 1e9
        self.result = f"Installed PyTorch {info.get('torch')} ({describe(info)}), {size:.1f} GB in {target}"
        self.lines.append(self.result)
        log_file.write(f"\n{self.result}\n")

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._cancelled = True
            self.proc.kill()

    @property
    def cancelled(self) -> bool:
        """Whether the last install was cancelled (its failure says so)."""
        return self._cancelled

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the install ends (or ``timeout`` seconds pass), in short joins so that Ctrl+C is
        noticed at once (a plain join cannot be interrupted on Windows)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
        return self.returncode


def log_path() -> Path:
    """pip's full output of the last install (its folder is made when an install starts)."""
    return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path="logs", create=False)) / LOG_NAME


INSTALLER = Installer()
