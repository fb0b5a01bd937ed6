"""A user-supplied SMPL model file gives new armatures the real mesh (read with smplx in the engine process).

The SMPL model itself cannot be redistributed, so the test writes a small file in
the same format: a tetrahedron around each joint, rigidly skinned to it.
"""

from __future__ import annotations

import pickle

import bpy
import numpy as np
import pytest
from addon_helpers import add_strip, generate

from inference import skeleton as sk


def write_synthetic_smpl(path):
    joints = np.zeros((24, 3))
    for j in range(1, 24):
        joints[j] = joints[sk.PARENTS[j]] + sk.REST_OFFSETS[j]
    joints += np.array([0.0, 0.2, 0.0])  # SMPL's pelvis is not at the origin of its model space
    corners = 0.02 * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)
    vertices = (joints[:, None, :] + corners[None]).reshape(-1, 3)  # (96, 3)
    faces = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    faces = (faces[None] + 4 * np.arange(24)[:, None, None]).reshape(-1, 3).astype(np.uint32)
    weights = np.repeat(np.eye(24), 4, axis=0)  # (96, 24)
    regressor = np.repeat(np.eye(24), 4, axis=1) / 4.0  # (24, 96): each joint is its tetrahedron's centre
    kintree = np.array([[4294967295, *sk.PARENTS[1:]], list(range(24))], dtype=np.int64)
    model = {
        "v_template": vertices, "f": faces, "weights": weights, "J_regressor": regressor,
        "kintree_table": kintree, "shapedirs": np.zeros((96, 3, 10)), "posedirs": np.zeros((96, 3, 207)),
    }
    with open(path, "wb") as f:
        pickle.dump(model, f)
    return vertices, joints


def test_smpl_body_from_model_file(scene, song, prefs, tmp_path):
    vertices, joints = write_synthetic_smpl(tmp_path / "SMPL_TEST.pkl")
    prefs.smpl_model_path = str(tmp_path / "SMPL_TEST.pkl")
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
