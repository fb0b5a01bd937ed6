"""Writing files so that a failure never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import M2DError


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it is removed.

    The file gets the ordinary permissions of a new file (umask applied), not
    the private mode of a temporary one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_path(path: str, suffix: str, what: str) -> Path:
    """``path`` as a Path once it is sure to be writable as a ``suffix`` file; M2DError saying why not.

    Commands check their outputs before any work, so a bad path never costs a generation.
    """
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise M2DError(f"The {what} file must end in {suffix}; got {p.name}.")
    if p.is_dir():
        raise M2DError(f"{p} is a folder; give a file name for the {what}.")
    if not p.parent.is_dir():
        raise M2DError(f"The folder {p.parent} does not exist; create it or choose another place for the {what}.")
    if not os.access(p.parent, os.W_OK):
        raise M2DError(f"Cannot write into {p.parent}; choose another place for the {what}.")
    return p
