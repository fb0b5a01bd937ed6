"""Writing files so that a failure never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

from .errors import M2DError

_TEMP_STEM = 40
"""Characters of the target's name kept in its temporary file's name (a name near the file system's
255-character limit must still leave room for the temporary one's prefix and random part)."""


def _temp_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder, named after it and hidden."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:_TEMP_STEM]}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    """Move ``tmp`` onto ``path`` with the permissions ``path`` had, or those of a new file (umask applied)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_paths(*paths):
    """Yield a list of temporary paths, one beside each of ``paths``; once the block succeeds each replaces
    its target, else all are removed.

    So several outputs of one job appear together or not at all. The file gets
    the permissions of the file it replaces, or the ordinary ones of a new file (not the private mode of a
    temporary one).
    """
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for path in targets:
            temps.append(_temp_beside(path))
        yield list(temps)
        for tmp, path in zip(temps, targets):
            _publish(tmp, path)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it is removed."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def save_npz(path, **arrays) -> Path:
    """Write ``arrays`` as an npz file at exactly ``path``, atomically.

    The archive is built in memory first, so a write that fails (a full disk) leaves neither a
    partial file nor a half-closed zip archive that complains when it is collected.
    """
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return Path(path)


def output_path(path: str, suffix: str, what: str) -> Path:
    """``path`` as a Path once it is sure to be writable as a ``suffix`` file; M2DError saying why not.

    Commands check their outputs before any work, so a bad path never costs a generation. Whether the
    folder takes files is tried by creating (and removing) one there: ``os.access`` misjudges it for
    root, Windows ACLs, read-only and network mounts.
    """
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise M2DError(f"The {what} file must end in {suffix}; got {p.name}.")
    if p.is_dir():
        raise M2DError(f"{p} is a folder; give a file name for the {what}.")
    if not p.parent.is_dir():
        raise M2DError(f"The folder {p.parent} does not exist; create it or choose another place for the {what}.")
    problem = cannot_write_in(p.parent)
    if problem:
        raise M2DError(f"Cannot write into {p.parent} ({problem}); choose another place for the {what}.")
    return p


def cannot_write_in(folder: Path) -> str:
    """Why no file can be created in ``folder`` ('' when one can), found by creating and removing one:
    ``os.access`` misjudges it for root, Windows ACLs, read-only and network mounts."""
    try:
        _temp_beside(Path(folder) / "probe").unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def write_failed(exc: OSError, *paths) -> M2DError:
    """The M2DError for an OSError while writing ``paths`` (whose temporary files are already gone)."""
    names = " and ".join(str(p) for p in paths)
    return M2DError(f"Could not write {names} ({exc.strerror or exc}); nothing was written. Free some "
                    "disk space or choose another place.")
