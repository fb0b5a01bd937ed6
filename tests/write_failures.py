"""Places and disks that refuse writes, for the tests of every file the project writes (both tiers)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from pathlib import Path


def refusing_folder(tmp_path: Path) -> Path:
    """A folder that takes no new file: for root, whom permissions do not stop and to whom ``os.access``
    says yes, /sys; for others a read-only folder in ``tmp_path``."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _limit(max_bytes: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def files_at_most(max_bytes: int):
    """For ``subprocess``'s ``preexec_fn``: no file the process writes may grow past ``max_bytes``, as on
    a full disk (RLIMIT_FSIZE)."""
    return lambda: _limit(max_bytes)


@contextlib.contextmanager
def full_disk(max_bytes: int):
    """The same for this process, while the block runs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.getsignal(signal.SIGXFSZ)
    _limit(max_bytes)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
