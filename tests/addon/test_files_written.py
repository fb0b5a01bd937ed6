"""Every file the extension writes for a generation: a place that cannot take it is reported before any
work, or, when the disk fills up mid-way, reported cleanly; the scene is exactly as it was and no partial
file stays behind."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import bpy
import pytest
from addon_helpers import add_strip, generate, snapshot

from write_failures import full_disk, refusing_folder

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file size limits")


def fails_with(*fragments, **kwargs) -> str:
    before = snapshot()
    with pytest.raises(RuntimeError) as info:
        generate(**kwargs)
    message = str(info.value)
    assert "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert snapshot() == before
    return message


@pytest.mark.parametrize("where", ["refusing folder", "a folder itself", "no folder", "not npz"])
def test_save_motion_path_is_checked_before_any_work(scene, song, tmp_path, where):
    """Generate Dance's save_npz used to be checked for its folder only and written at the very end:
    a folder given as the file, or a folder that refuses files, ended in a traceback after sampling."""
    add_strip(scene, song)
    path, message = {
        "refusing folder": (refusing_folder(tmp_path) / "motion.npz", "Cannot write into"),
        "a folder itself": (tmp_path / "folder.npz", "is a folder; give a file name for the saved motion"),
        "no folder": (tmp_path / "nowhere" / "motion.npz", "does not exist"),
        "not npz": (tmp_path / "motion.txt", "The saved motion file must end in .npz"),
    }[where]
    (tmp_path / "folder.npz").mkdir()
    before = sorted(tmp_path.iterdir())
    fails_with(message, save_npz=str(path))
    assert sorted(tmp_path.iterdir()) == before


@pytest.fixture
def work_folder(ext):
    """The extension's work folder; made a folder again after the test."""
    folder = Path(bpy.utils.extension_path_user(ext.common.ADDON_PACKAGE, path="work", create=True))
    yield folder
    if folder.is_file():
        folder.unlink()
    folder.mkdir(exist_ok=True)


def test_work_folder_that_cannot_be_made(scene, song, ext, work_folder, tmp_path, monkeypatch):
    """A file where the work folder belongs: Blender answers "" for the folder, which used to send the
    engine's files into the current folder."""
    add_strip(scene, song)
    ext.jobs.SESSION.shutdown()
    shutil.rmtree(work_folder)
    work_folder.write_text("in the way")
    monkeypatch.chdir(tmp_path)
    fails_with("cannot create its folder", str(work_folder), "Remove what is in the way")
    assert list(tmp_path.iterdir()) == []


def test_packed_music_on_a_full_disk(scene, song, work_folder):
    """A sound packed in the .blend is written out for the engine: a full disk used to end in an OSError
    traceback and leave the partial copy behind."""
    strip = add_strip(scene, song)
    strip.sound.pack()
    assert strip.sound.packed_file is not None and strip.sound.packed_file.size > 64_000
    before = sorted(work_folder.iterdir())
    snap = snapshot()
    with pytest.raises(RuntimeError) as info, full_disk(64_000):
        generate()
    message = str(info.value)
    assert "Cannot write the music packed in the file" in message and "File too large" in message, message
    assert "Traceback" not in message
    assert snapshot() == snap
    assert sorted(work_folder.iterdir()) == before


def test_folder_taken_away_while_the_dance_is_made(scene, song, ext, tmp_path, monkeypatch):
    """The saved motion's folder disappears between the check and the write at the end: a clean report
    (any OSError past the checks is one), the new armature and take removed again."""
    add_strip(scene, song)
    folder = tmp_path / "out"
    folder.mkdir()
    make_keys = ext.generation.Generation._make_keys

    def remove_folder_then_make_keys(self, args):
        shutil.rmtree(folder)
        return make_keys(self, args)

    monkeypatch.setattr(ext.generation.Generation, "_make_keys", remove_folder_then_make_keys)
    fails_with("Could not read or write", "No such file or directory", "nothing was changed",
               save_npz=str(folder / "motion.npz"))
    assert not folder.exists()
