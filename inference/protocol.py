"""The contract between a front end and the engine's worker process, and what a take records.

One definition for both sides of a process boundary: the Blender extension
builds these objects and writes them as JSON lines; :mod:`inference.worker`
reads them back with the same classes, so a field added on one side cannot be
forgotten on the other. NumPy-free and torch-free: Blender's own Python imports
this module.

* :class:`GenerateRequest`, :class:`SmplMeshRequest`, :class:`ProbeRequest` —
  what the worker is asked (``{"cmd": ..., "id": ..., **fields}`` on one line).
* :data:`STAGES` — the stages a generation reports progress in, with the label
  every front end shows and the share of a progress bar each takes.
* :class:`TakeInfo` — what a generated take remembers about how it was made
  (stored on the Blender action under :data:`TAKE_KEY`).
* :func:`generate_command` — the ``python -m inference generate`` line for the same job.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import ClassVar, Mapping, Optional

from .errors import ProtocolError


# ----------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class Stage:
    """One stage of a generation: its wire name, the label users see, its share (start, end) of a progress bar."""

    name: str
    label: str
    start: float
    end: float

    def fraction(self, done: int, total: int) -> float:
        """Overall progress (0..1) when ``done`` of ``total`` steps of this stage are done."""
        return self.start + (self.end - self.start) * min(1.0, done / max(1, total))


STARTING = Stage("starting", "Starting the dance engine", 0.0, 0.02)
"""The front end is starting the worker process (never sent by the engine)."""
LOADING = Stage("loading", "Loading the model", 0.02, 0.06)
FEATURES = Stage("features", "Listening to the music", 0.06, 0.15)
SAMPLING = Stage("sampling", "Dancing", 0.15, 0.97)
"""``done`` of ``total`` is the sampling step (its progress bar shows it)."""
FINISHING = Stage("finishing", "Finishing", 0.97, 1.0)
"""Limits, beat snap, foot lock and forward kinematics after sampling."""

STAGES = {s.name: s for s in (STARTING, LOADING, FEATURES, SAMPLING, FINISHING)}
"""Every stage by name, in the order a generation passes through them."""

ANY_STYLE = "any"
"""The style that asks for none in particular (the network's null style): what weights without styles know."""
STYLE_CHOICES = (ANY_STYLE, "cha-cha", "rumba", "waltz")
"""The Dance panel's styles, in its order: "any" and the ballroom data's three. A model knows only those
it was trained with (``M2DConfig.styles``; the shipped model all three), and the engine checks the request
against the model."""


def stage(name: str) -> Stage:
    """The stage called ``name``; an unknown name (a newer engine's) gets a plain label and the whole bar."""
    return STAGES.get(name) or Stage(name, name.capitalize(), 0.0, 1.0)


# ----------------------------------------------------------------------------- records


def _type_of(field: dataclasses.Field) -> tuple[str, bool]:
    """(type name, whether None is allowed) of a field annotated ``T`` or ``Optional[T]``."""
    annotation = str(field.type)
    if annotation.startswith("Optional["):
        return annotation[len("Optional["):-1], True
    return annotation, False


def _check_type(owner: str, field: dataclasses.Field, value):
    """``value`` as ``field``'s type: str, int, float or bool, or Optional of one (None allowed)."""
    kind, optional = _type_of(field)
    name = field.name
    if value is None and optional:
        return None
    ok = {"str": isinstance(value, str),
          "int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
          "bool": isinstance(value, bool)}[kind]
    if not ok:
        raise ProtocolError(f"{owner}: field '{name}' must be {'a' if kind != 'int' else 'an'} {kind}"
                            f"{' or null' if optional else ''}; got {value!r}.")
    return float(value) if kind == "float" else value


class _Record:
    """A dataclass read from and written to a JSON object, refusing what the contract does not know.

    Fields are annotated str, int, float, bool or Optional[...] of one (the annotation is checked).
    """

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: Mapping):
        """The record in ``fields``; ProtocolError naming any unknown, missing or mistyped field."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise ProtocolError(f"{cls.__name__}: unknown field{'s' if len(unknown) > 1 else ''} "
                                f"{', '.join(unknown)}; the engine and the extension may be of different versions.")
        missing = [name for name, f in known.items() if name not in fields
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ProtocolError(f"{cls.__name__}: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}.")
        return cls(**{name: _check_type(cls.__name__, known[name], value) for name, value in fields.items()})


@dataclass(frozen=True)
class GenerateRequest(_Record):
    """Make a dance for ``duration`` seconds of ``audio`` from ``start`` and save it to ``output`` (npz contract).

    ``sampler``/``steps``/``guidance`` None: the model's defaults (a sampler other than the model's
    takes its own usual steps). ``weights`` None: the shipped model.
    ``constraints``: a constraints npz (pins) or None.
    """

    CMD: ClassVar[str] = "generate"

    audio: str
    output: str
    start: float = 0.0
    duration: Optional[float] = None
    seed: int = 0
    sampler: Optional[str] = None
    steps: Optional[int] = None
    guidance: Optional[float] = None
    style: str = "any"
    beat_snap: bool = True
    foot_lock: bool = True
    device: str = "auto"
    weights: Optional[str] = None
    constraints: Optional[str] = None


@dataclass(frozen=True)
class SmplMeshRequest(_Record):
    """Read a user's SMPL model file (``model``) and save its rest mesh, skin weights and joints to ``output``."""

    CMD: ClassVar[str] = "smpl_mesh"

    model: str
    output: str


@dataclass(frozen=True)
class ProbeRequest(_Record):
    """Say what the worker's Python can run (see :func:`inference.worker.probe`)."""

    CMD: ClassVar[str] = "probe"


REQUESTS = {r.CMD: r for r in (GenerateRequest, SmplMeshRequest, ProbeRequest)}
QUIT = "quit"
"""The request that ends the worker (no fields, no answer)."""
QUIT_LINE = json.dumps({"cmd": QUIT}) + "\n"


def request_line(request_id: int, request: _Record) -> str:
    """One request as the line the worker reads: ``{"cmd": ..., "id": ..., **fields}``."""
    return json.dumps({"cmd": request.CMD, "id": request_id, **request.to_dict()}) + "\n"


def parse_request(message: Mapping):
    """(cmd, id, request) of a decoded request line; the request is None for :data:`QUIT`.

    ProtocolError for an unknown command or bad fields.
    """
    fields = dict(message)
    cmd, request_id = fields.pop("cmd", None), fields.pop("id", None)
    if cmd == QUIT:
        return cmd, request_id, None
    if cmd not in REQUESTS:
        raise ProtocolError(f"Unknown request {cmd!r}; the worker understands {', '.join(REQUESTS)} and {QUIT}.")
    return cmd, request_id, REQUESTS[cmd].from_dict(fields)


# ----------------------------------------------------------------------------- events

READY, PROGRESS, DONE, ERROR, PROBE, EXIT = "ready", "progress", "done", "error", "probe", "exit"
"""Event names: the worker sends the first five (``{"event": name, "id": ..., ...}``);
``exit`` is what a client records when the process ends."""


def event_line(name: str, **fields) -> str:
    """One event as the line the worker writes."""
    return json.dumps({"event": name, **fields}) + "\n"


# ----------------------------------------------------------------------------- takes

TAKE_KEY = "music2dance"
"""The custom property of a Blender action that holds its :class:`TakeInfo`."""


def _frame_pair(value) -> tuple[int, int]:
    first, last = value
    return int(first), int(last)


@dataclass(frozen=True)
class TakeInfo:
    """How a take (one generated Blender action) was made: music, settings, the scene frames it covers.

    ``mode`` is "" for Generate Dance and the edit's mode (RANGE, UNPINNED, INBETWEEN) otherwise;
    only edits store ``regenerated`` (the scene frames sampled again), ``source`` (the take edited)
    and ``pins`` (the user's pins met). A record from before ``sampler`` was stored was made by DDIM.
    """

    EDIT_FIELDS: ClassVar[tuple] = ("mode", "regenerated", "source", "pins")
    _CONVERT: ClassVar[dict] = {"str": str, "int": int, "float": float, "bool": bool, "tuple": _frame_pair}
    """How a stored value (perhaps one of Blender's ID property types) becomes each annotated type."""

    audio: str = ""
    strip: str = ""
    audio_start: float = 0.0
    seed: int = 0
    sampler: str = "ddim"
    steps: int = 0
    guidance: float = 0.0
    style: str = "any"
    beat_snap: bool = True
    foot_lock: bool = True
    frame_start: Optional[int] = None
    frame_end: Optional[int] = None
    fps: float = 0.0
    mode: str = ""
    regenerated: Optional[tuple] = None
    source: str = ""
    pins: int = 0
    floor_shift: float = 0.0
    """Metres the dance was raised on a character (its edits keep the height; 0 on SMPL armatures)."""

    @classmethod
    def of_request(cls, request: GenerateRequest, **fields) -> "TakeInfo":
        """The record of a take made by ``request`` (its seed and settings), with the other ``fields``."""
        return cls(seed=int(request.seed), sampler=str(request.sampler), steps=int(request.steps),
                   guidance=float(request.guidance), style=str(request.style),
                   beat_snap=bool(request.beat_snap), foot_lock=bool(request.foot_lock), **fields)

    @property
    def frames(self) -> Optional[tuple[int, int]]:
        """(first, last) scene frames the take covers, when recorded."""
        if self.frame_start is None or self.frame_end is None:
            return None
        return self.frame_start, self.frame_end

    def to_dict(self) -> dict:
        """The stored form, plain numbers and strings; a take of Generate Dance has no edit fields."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name in self.EDIT_FIELDS and not self.mode):
                continue
            out[f.name] = list(value) if f.name == "regenerated" else value
        return out

    @classmethod
    def from_dict(cls, stored: Optional[Mapping]) -> Optional["TakeInfo"]:
        """The record stored on an action (a dict or Blender's ID property group); None when there is none.

        Lenient, unlike the requests, because .blend files outlive versions: a field an earlier
        version did not store takes its default, one this version does not know is ignored.
        """
        if stored is None:
            return None
        keys = set(stored.keys())
        return cls(**{f.name: cls._CONVERT[_type_of(f)[0]](stored[f.name]) for f in dataclasses.fields(cls)
                      if f.name in keys and stored[f.name] is not None})


# ----------------------------------------------------------------------------- the command line


def generate_command(audio: str, output: str, start: float, duration: float, seed: int,
                     constraints: Optional[str] = None) -> str:
    """The ``python -m inference generate`` command line for the same music, span, seed and pins."""
    line = (f"python -m inference generate \"{audio}\" -o {output} --start {start:.6f} "
            f"--duration {duration:.6f} --seed {seed}")
    return line + (f" --constraints \"{constraints}\"" if constraints else "")
