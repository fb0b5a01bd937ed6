"""A long-lived generation process for front ends that must never block: ``python -m inference.worker``.

The Blender extension starts this module in a separate Python process, so that
PyTorch never runs inside Blender: an out-of-memory error or a crash in torch
ends this process only, and cancelling is simply ending it. The process keeps
its :class:`~inference.generate.DanceGenerator` between requests, so a second
generation with the same weights and device skips the model load.

Protocol (:mod:`inference.protocol` defines every request, event and stage): JSON,
one object per line. Requests arrive on stdin::

    {"cmd": "generate", "id": 1, "audio": "song.ogg", "output": "/tmp/dance.npz", "start": 12.5,
     "duration": 30.0, "seed": 0, "sampler": "dpmpp_2m", "steps": 20, "guidance": 2.0, "beat_snap": true,
     "foot_lock": true,
     "device": "auto", "weights": null, "constraints": null}
    {"cmd": "smpl_mesh", "id": 2, "model": "SMPL_NEUTRAL.npz", "output": "/tmp/body.npz"}
    {"cmd": "probe", "id": 3}
    {"cmd": "quit"}

Events leave on stdout::

    {"event": "ready", "pid": 1234, "python": "3.11.7"}
    {"event": "progress", "id": 1, "stage": "loading" | "features" | "sampling" | "finishing",
     "done": 3, "total": 50}
    {"event": "done", "id": 1, "output": "/tmp/dance.npz", "seconds": 12.3}
    {"event": "error", "id": 1, "kind": "AudioError", "message": "..."}
    {"event": "probe", "id": 3, "torch": "2.13.0", "gpu": null, ...}

A request that is not JSON, names an unknown command or has unknown, missing or
mistyped fields is answered by an ``error`` event (``kind`` "ProtocolError"; its
``id`` is null when the line could not be read).

Messages of ``error`` events are written for the user. Anything the libraries
print goes to stderr, never into the protocol. ``python -m inference.worker
--probe`` prints one probe object and exits: what this Python can run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from . import protocol
from .errors import DeviceError, M2DError, ProtocolError
from .files import save_npz
from .protocol import GenerateRequest, ProbeRequest, SmplMeshRequest

RUNTIME_MODULES = ("torch", "numpy", "scipy", "librosa", "soundfile", "soxr", "safetensors")
"""What a generation needs besides the standard library."""
_IMPORT_CHECKS = {"scipy": "scipy.ndimage", "librosa": "librosa.onset"}
"""The module :func:`probe` imports to know a package works (one that loads its compiled parts)."""

_OUT_OF_MEMORY = (
    "The {where} ran out of memory while generating. Generate a shorter frame range, "
    "or choose {other} as Device in the Dance panel."
)
DEVICE_REMEDY = ("Choose another Device in the Dance panel (Automatic uses the GPU when there is one, "
                 "else the CPU).")
"""What to do about an unavailable device, in the panel's words (the engine's own names the CLI flag)."""


class _Channel:
    """Writes events to the real stdout; everything else printed ends up on stderr."""

    def __init__(self):
        self._out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # C libraries printing to fd 1
        sys.stdout = sys.stderr

    def send(self, name: str, **fields) -> None:
        self._out.write(protocol.event_line(name, **fields))
        self._out.flush()


def _package_version(name: str):
    """The installed version of ``name`` without importing it, or None."""
    from importlib import metadata

    if importlib.util.find_spec(name) is None:
        return None
    try:
        return metadata.version({"soundfile": "soundfile", "soxr": "soxr"}.get(name, name))
    except metadata.PackageNotFoundError:
        return "unknown"


def probe() -> dict:
    """What this interpreter can run: Python, PyTorch, the GPU, and which packages are missing or broken."""
    info = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "versions": {},
        "missing": [],
        "torch": None,
        "cuda": False,
        "gpu": None,
        "mps": False,
    }
    for name in RUNTIME_MODULES:
        version = _package_version(name)
        if version is None:
            info["missing"].append(name)
            continue
        info["versions"][name] = version
        try:  # installed is not enough: a broken or mismatched build fails here, not mid-generation
            importlib.import_module(_IMPORT_CHECKS.get(name, name))
        except Exception as exc:
            info["missing"].append(name)
            info["error"] = f"{name} is installed but cannot be imported: {type(exc).__name__}: {exc}"
    if "torch" in sys.modules:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
        mps = getattr(torch.backends, "mps", None)
        info["mps"] = bool(mps is not None and mps.is_available())
        if info["mps"] and not info["gpu"]:
            info["gpu"] = "Apple GPU (MPS)"
    return info


SMPL_ARRAYS = ("v_template", "f", "weights", "J_regressor", "kintree_table", "shapedirs", "posedirs")
"""What an SMPL model file in .npz form must hold (the arrays of the .pkl form, plain and dense)."""


def _smpl_arrays(path: Path) -> dict:
    """The arrays of an SMPL model in .npz form, read without unpickling anything."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # zip and npy parsing raise many kinds; object arrays raise ValueError
        raise M2DError(f"{path} is not a readable SMPL model ({type(exc).__name__}: {exc}). An .npz SMPL "
                       "file holds plain arrays only; make it as the README's SMPL section shows.") from None
    missing = [k for k in SMPL_ARRAYS if k not in arrays]
    if missing:
        raise M2DError(f"{path} is not an SMPL model: it lacks {', '.join(missing)}.")
    return {k: arrays[k] for k in SMPL_ARRAYS}


def _missing_runtime_message() -> str | None:
    missing = [m for m in RUNTIME_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (
        f"This Python ({sys.executable}) lacks {', '.join(missing)}. Install the runtime from the "
        "extension's preferences, or point them at a Python environment that has PyTorch and librosa."
    )


class Worker:
    """Serves requests one at a time; keeps the last model loaded."""

    def __init__(self, channel: _Channel):
        self.channel = channel
        self._generator = None
        self._generator_key = None

    # ------------------------------------------------------------------ requests
    def generator(self, weights, device: str, request_id):
        """The loaded model for ``weights`` on ``device``, loaded again only when either (or the file) changed."""
        from .config import model_files
        from .network.weights import default_weights_dir

        path = Path(weights) if weights else default_weights_dir()
        weights_file = model_files(path)[0]
        stamp = weights_file.stat().st_mtime_ns if weights_file.is_file() else None
        key = (str(path.resolve()), device or "auto", stamp)
        if self._generator is None or key != self._generator_key:
            from .generate import DanceGenerator

            self._generator = self._generator_key = None
            self.progress(request_id, protocol.LOADING.name, 0, 1)
            self._generator = DanceGenerator(weights=path, device=device or "auto")
            self._generator_key = key
            self.progress(request_id, protocol.LOADING.name, 1, 1)
        return self._generator

    def progress(self, request_id, stage: str, done: int, total: int) -> None:
        """Send a progress event (``stage``: a name of :data:`inference.protocol.STAGES`)."""
        self.channel.send(protocol.PROGRESS, id=request_id, stage=stage, done=done, total=total)

    def generate(self, request_id, req: GenerateRequest) -> dict:
        """Make the dance ``req`` asks for and save it; returns the ``done`` event's fields."""
        from .music.audio import check_audio_path

        output = Path(req.output)
        check_audio_path(req.audio)
        generator = self.generator(req.weights, req.device, request_id)
        constraints = None
        if req.constraints:
            from .sampling.constraints import Constraints

            constraints = Constraints.load(req.constraints, fps=generator.config.fps)
        dance = generator.generate(
            req.audio, start=req.start, duration=req.duration, seed=req.seed, sampler=req.sampler,
            steps=req.steps, guidance=req.guidance, style=req.style, constraints=constraints,
            beat_snap=req.beat_snap, foot_lock=req.foot_lock,
            progress=lambda stage, done, total: self.progress(request_id, stage, done, total),
        )
        dance.save(output)
        return {"output": str(output), "frames": dance.num_frames, "fps": dance.fps}

    def smpl_mesh(self, request_id, req: SmplMeshRequest) -> dict:
        """Rest vertices, faces, skinning weights and joints of a user's SMPL model file, via smplx."""
        import numpy as np

        model_path = Path(req.model)
        if not model_path.is_file():
            raise M2DError(f"SMPL model file not found: {model_path}. Check the path in the preferences.")
        try:
            import smplx
        except ImportError:
            raise M2DError("The smplx package is missing; install the runtime again from the preferences.") from None
        try:
            if model_path.suffix.lower() == ".npz":  # plain arrays: nothing in the file can run
                from smplx.utils import Struct

                model = smplx.SMPL(model_path=str(model_path), data_struct=Struct(**_smpl_arrays(model_path)))
            else:  # smplx unpickles it, which could run code hidden in the file (the preferences warn)
                model = smplx.SMPL(model_path=str(model_path))
        except M2DError:
            raise
        except ModuleNotFoundError as exc:
            raise M2DError(
                f"{model_path.name} needs the Python package {exc.name!r} to be read. Use a model file "
                "without chumpy objects (smplx's tools/clean_ch.py converts one)."
            ) from None
        except Exception as exc:
            raise M2DError(f"{model_path} is not a readable SMPL model ({type(exc).__name__}: {exc}).") from None
        vertices = model.v_template.detach().cpu().numpy().astype(np.float64)  # (V, 3) y-up
        weights = model.lbs_weights.detach().cpu().numpy().astype(np.float32)  # (V, 24)
        joints = model.J_regressor.detach().cpu().numpy() @ vertices  # (24, 3)
        faces = np.asarray(model.faces, dtype=np.int64)
        if weights.shape[1] != 24 or joints.shape != (24, 3):
            raise M2DError(f"{model_path.name} is not a 24-joint SMPL body model.")
        output = save_npz(req.output, vertices=vertices, faces=faces, weights=weights, joints=joints)
        return {"output": str(output), "vertices": len(vertices)}

    # ------------------------------------------------------------------ loop
    def handle(self, message: dict) -> None:
        """Answer one decoded request line with a ``done``, ``probe`` or ``error`` event."""
        request_id = message.get("id")
        started = time.monotonic()
        try:
            _, request_id, req = protocol.parse_request(message)
            if isinstance(req, ProbeRequest):
                self.channel.send(protocol.PROBE, id=request_id, **probe())
                return
            missing = _missing_runtime_message()
            if missing:
                self.channel.send(protocol.ERROR, id=request_id, kind="RuntimeMissing", message=missing)
                return
            run = self.generate if isinstance(req, GenerateRequest) else self.smpl_mesh
            result = run(request_id, req)
            self.channel.send(protocol.DONE, id=request_id, seconds=time.monotonic() - started, **result)
        except DeviceError as exc:
            self.channel.send(protocol.ERROR, id=request_id, kind=type(exc).__name__,
                              message=f"{exc.problem} {DEVICE_REMEDY}")
        except M2DError as exc:
            self.channel.send(protocol.ERROR, id=request_id, kind=type(exc).__name__, message=str(exc))
        except OSError as exc:  # past the checks: a full disk, a folder taken away
            where = f" {exc.filename}" if exc.filename else " a file"
            message = (f"The dance engine could not read or write{where} ({exc.strerror or exc}); nothing was "
                       "made. Free some disk space, or check that the file and its folder are still there.")
            self.channel.send(protocol.ERROR, id=request_id, kind="FileError", message=message)
        except MemoryError:
            self._generator = self._generator_key = None
            message = _OUT_OF_MEMORY.format(where="computer", other="a GPU (if you have one)")
            self.channel.send(protocol.ERROR, id=request_id, kind="OutOfMemory", message=message)
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch here
                self._generator = self._generator_key = None
                message = _OUT_OF_MEMORY.format(where="GPU", other="CPU")
                self.channel.send(protocol.ERROR, id=request_id, kind="OutOfMemory", message=message)
                return
            traceback.print_exc()
            message = (f"Internal error in the dance engine ({type(exc).__name__}: {exc}). "
                       "The system console has the details; please report them.")
            self.channel.send(protocol.ERROR, id=request_id, kind="InternalError", message=message)

    def serve(self, stdin) -> None:
        """Answer requests until stdin ends or a ``quit`` request arrives."""
        self.channel.send(protocol.READY, pid=os.getpid(), python=platform.python_version())
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise ValueError("not a JSON object")
            except ValueError:
                print(f"music2dance worker: a malformed request: {line[:200]}", file=sys.stderr)
                self.channel.send(protocol.ERROR, id=None, kind=ProtocolError.__name__,
                                   message="The dance engine received a request it cannot read (not a JSON object).")
                continue
            if message.get("cmd") == protocol.QUIT:
                break
            self.handle(message)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--probe", action="store_true", help="print what this Python can run (JSON) and exit")
    args = parser.parse_args(argv)
    channel = _Channel()
    if args.probe:
        channel.send(protocol.PROBE, **probe())
        return 0
    if hasattr(os, "nice"):
        os.nice(5)  # the artist's interface comes first
    Worker(channel).serve(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
