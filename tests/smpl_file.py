"""A small SMPL model file in the format of smpl.is.tue.mpg.de's, for the tests (the real one cannot be
redistributed): a tetrahedron around each joint, rigidly skinned to it."""

from __future__ import annotations

import pickle

import numpy as np

from inference import skeleton as sk


def synthetic_smpl() -> dict:
    """The arrays of an SMPL model (the .pkl's dictionary, chumpy-free)."""
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
    return {
        "v_template": vertices, "f": faces, "weights": weights, "J_regressor": regressor,
        "kintree_table": kintree, "shapedirs": np.zeros((96, 3, 10)), "posedirs": np.zeros((96, 3, 207)),
    }


def write_synthetic_smpl(path):
    """Write :func:`synthetic_smpl` as a .pkl (as SMPL's site distributes it); returns (vertices, joints)."""
    model = synthetic_smpl()
    with open(path, "wb") as f:
        pickle.dump(model, f)
    return model["v_template"], model["J_regressor"] @ model["v_template"]


def convert_as_the_readme_says(pkl, npz) -> None:
    """Run the README's .pkl -> .npz snippet (its first code block that mentions ``SMPL_NEUTRAL.npz``)."""
    import os
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    code = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "SMPL_NEUTRAL.npz" in block)
    code = code.replace('"SMPL_NEUTRAL.pkl"', repr(os.fspath(pkl))).replace('"SMPL_NEUTRAL.npz"', repr(os.fspath(npz)))
    exec(compile(code, "README.md", "exec"), {})
