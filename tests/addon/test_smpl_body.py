"""A user-supplied SMPL model file gives new armatures the real mesh (read with smplx in the engine process).

The SMPL model itself cannot be redistributed, so the test writes a small file in
the same format (``tests/smpl_file.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
import numpy as np
import pytest
from addon_helpers import add_strip, draw_preferences, generate, snapshot

from inference import skeleton as sk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for smpl_file
from smpl_file import convert_as_the_readme_says, write_synthetic_smpl  # noqa: E402


@pytest.mark.parametrize("form", ["npz", "pkl"])
def test_smpl_body_from_model_file(scene, song, prefs, tmp_path, form):
    """The .npz form (made as the README says) and the .pkl give the same body."""
    vertices, joints = write_synthetic_smpl(tmp_path / "SMPL_TEST.pkl")
    if form == "npz":
        convert_as_the_readme_says(tmp_path / "SMPL_TEST.pkl", tmp_path / "SMPL_TEST.npz")
    prefs.smpl_model_path = str(tmp_path / f"SMPL_TEST.{form}")
    add_strip(scene, song)
    assert generate() == {"FINISHED"}
    rig = bpy.data.objects["Dancer"]
    body = next(o for o in rig.children if o.type == "MESH")
    assert len(body.data.vertices) == len(vertices) and len(body.data.polygons) == 96
    # Skinning weights from the file: each tetrahedron belongs wholly to its joint.
    for j, name in enumerate(sk.JOINT_NAMES):
        group = body.vertex_groups[name].index
        members = [v.index for v in body.data.vertices if any(g.group == group for g in v.groups)]
        assert members == list(range(4 * j, 4 * j + 4)), name
    # Placed on the rig: each tetrahedron's centre on its bone's head (rest pose).
    co = np.empty(len(vertices) * 3)
    body.data.vertices.foreach_get("co", co)
    centres = co.reshape(24, 4, 3).mean(1)
    heads = np.array([rig.data.bones[n].head_local for n in sk.JOINT_NAMES])
    assert np.abs(centres - heads).max() < 1e-5
    # And it moves with the dance: on a later frame the centres follow the posed heads.
    frame = int(rig.animation_data.action.frame_range[1]) - 3
    bpy.context.scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    mesh = body.evaluated_get(depsgraph).to_mesh()
    posed = np.array([v.co for v in mesh.vertices]).reshape(24, 4, 3).mean(1)
    body.evaluated_get(depsgraph).to_mesh_clear()
    posed_heads = np.array([rig.evaluated_get(depsgraph).pose.bones[n].head for n in sk.JOINT_NAMES])
    assert np.abs(posed - posed_heads).max() < 1e-4


def test_unreadable_smpl_file_is_reported(scene, song, prefs, tmp_path):
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    prefs.smpl_model_path = str(tmp_path / "bad.pkl")
    add_strip(scene, song)
    with pytest.raises(RuntimeError, match="not a readable SMPL model"):
        generate()
    assert "Dancer" not in bpy.data.objects


def test_npz_body_file_never_unpickles(scene, song, prefs, tmp_path):
    """An .npz holding a pickled object (which would create a folder when unpickled) is refused unread."""
    import os

    marker = tmp_path / "the-file-ran-code"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    arrays = {"v_template": np.zeros((4, 3)), "f": np.array([Payload()], dtype=object)}
    np.savez(tmp_path / "evil.npz", **arrays)
    prefs.smpl_model_path = str(tmp_path / "evil.npz")
    add_strip(scene, song)
    before = snapshot()
    with pytest.raises(RuntimeError, match="not a readable SMPL model.*plain arrays only"):
        generate()
    assert not marker.exists() and snapshot() == before


def _preferences_labels() -> list:
    return [text or "" for kind, text in draw_preferences() if kind == "label"]


def test_preferences_warn_about_a_pkl_body_file(prefs, tmp_path):
    prefs.smpl_model_path = str(tmp_path / "SMPL_NEUTRAL.pkl")
    labels = _preferences_labels()
    assert any("unpickling it, which can run code" in t for t in labels), labels
    assert any(".npz form (see the README)" in t for t in labels), labels
    prefs.smpl_model_path = str(tmp_path / "SMPL_NEUTRAL.npz")
    assert not any("unpickling" in t for t in _preferences_labels())
