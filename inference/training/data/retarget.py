"""Retargeting point-cloud skeletons onto SMPL's 24 joints: bone-direction IK and root path.

The source gives positions of anatomical landmarks, not rotations. Each SMPL
joint's world rotation is the one that carries two rest-pose directions of its
body segment onto the matching landmark directions (a two-vector frame fit,
"TRIAD"; Shuster & Oh 1981): the bone direction exactly, and a second direction
(bend plane, facing, head or foot points) for the twist about it. Local
rotations follow as ``G_parent^T G_joint``. Bone lengths stay SMPL's, so the
root path is re-solved so that planted feet stay planted (:func:`solve_root_path`).

Landmarks are given in the engine's world (z-up, right-handed, metres) as a
dict of (N, 3) arrays; :data:`LANDMARKS` lists the names. The source is at its
own scale: ``scale`` is the factor taking source lengths to SMPL's.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_banded

from ... import skeleton as sk
from ...cleanup.limits import limit_head_turn

J = sk.JOINT_INDEX
OFFSETS = sk.REST_OFFSETS  # body frame (y-up), metres

LANDMARKS = (
    "root", "spine", "neck", "head", "head_left", "head_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_toe", "right_toe",
)
"""Landmark names :func:`fit_rotations` reads. "neck" is the shoulder midpoint, "spine" a lower-back
point (:data:`SPINE_LANDMARK_HEIGHT` above the root at rest), "head" a point above the head joint
(:data:`HEAD_LANDMARK_HEIGHT`). "head_left"/"head_right" may be missing; an optional (N,)
"head_side_weight" in 0..1 says how far to trust their direction."""

# Body-frame axes of SMPL's rest pose: x to the body's left, y up, z forward.
_X, _Y, _Z = np.eye(3)

SPINE_LANDMARK_HEIGHT = 0.17
"""The "spine" landmark: a lower-back point this far (m) straight above the root in the rest pose."""
HEAD_LANDMARK_HEIGHT = sk.HEAD_TOP_HEIGHT
"""The "head" landmark: this far (m) above SMPL's head joint, along the head's up axis."""

_REST = sk.forward_kinematics(np.broadcast_to(np.eye(3), (sk.NUM_JOINTS, 3, 3)), np.zeros(3))[0]  # body frame
_REST_HIP_LINE = _REST[J["left_hip"]] - _REST[J["right_hip"]]
_REST_SHOULDER_LINE = _REST[J["left_shoulder"]] - _REST[J["right_shoulder"]]
_REST_NECK = 0.5 * (_REST[J["left_shoulder"]] + _REST[J["right_shoulder"]])  # the "neck" landmark at rest
_REST_SPINE_TO_NECK = _REST_NECK - np.array([0.0, SPINE_LANDMARK_HEIGHT, 0.0])

# A bend below this many degrees leaves the bend plane undefined; above the second it is trusted fully.
BEND_UNSURE_DEG = (10.0, 30.0)

# Landmarks compared by :func:`retarget_error`: SMPL joints, plus the "neck" (shoulder midpoint) and
# "head" (above the head joint) landmarks built the same way on SMPL. The source's hip markers are not
# hip-joint centres (see tang2018), so hips are left out.
ERROR_LANDMARKS = (
    "neck", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)


def smpl_landmarks(rotations: np.ndarray, trans: np.ndarray) -> dict:
    """The landmarks of :data:`ERROR_LANDMARKS` on an SMPL pose: (N, 3) each."""
    joints, world = sk.forward_kinematics(rotations, trans)
    out = {name: joints[:, J[name]] for name in ERROR_LANDMARKS if name in J and name != "neck"}
    out["neck"] = 0.5 * (joints[:, J["left_shoulder"]] + joints[:, J["right_shoulder"]])
    out["head"] = joints[:, J["head"]] + world[:, J["head"]] @ np.array([0.0, HEAD_LANDMARK_HEIGHT, 0.0])
    return out


def _unit(v, eps=1e-9):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def two_vector_frame(a, b):
    """(..., 3) primary and secondary directions -> (..., 3, 3) orthonormal frame, columns (a, b', a x b')."""
    e1 = _unit(a)
    e2 = _unit(b - (b * e1).sum(-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def align(a_rest, b_rest, a_target, b_target):
    """World rotation (..., 3, 3) taking body-frame ``a_rest`` onto ``a_target``, ``b_rest`` into its plane (TRIAD)."""
    rest = two_vector_frame(np.broadcast_to(a_rest, np.shape(a_target)),
                            np.broadcast_to(b_rest, np.shape(b_target)))
    return two_vector_frame(a_target, b_target) @ np.swapaxes(rest, -1, -2)


def _bend_weight(u, v):
    """0..1 trust in the plane of two consecutive bones from the angle between them."""
    cos = np.clip((_unit(u) * _unit(v)).sum(-1), -1.0, 1.0)
    deg = np.degrees(np.arccos(cos))
    lo, hi = BEND_UNSURE_DEG
    return np.clip((deg - lo) / (hi - lo), 0.0, 1.0)[..., None]


def _local(parent_world, world):
    return np.swapaxes(parent_world, -1, -2) @ world


def _fractional(rotation, fraction):
    """``rotation ** fraction`` by scaling its axis-angle."""
    return sk.axis_angle_to_matrix(sk.matrix_to_axis_angle(rotation) * fraction)


def fit_rotations(lm: dict, scale: float) -> np.ndarray:
    """Landmarks (dict of (N, 3), world metres, source scale) -> (N, 24, 3, 3) SMPL local rotations.

    Pelvis: hip line and root->spine. Spine1-3 share the pelvis-to-thorax turn
    (thorax: shoulder line and spine->neck). Neck: neck->head, twist from the
    head points, folded into a neck's range (:func:`~inference.cleanup.limits.limit_head_turn`).
    Rest directions of these landmark pairs are taken from SMPL's
    rest pose (hips, shoulders, "spine" and "head" landmarks as defined above).
    Upper arm and forearm: their bones, twist from the elbow's bend plane
    (faded to the thorax's when the arm is straight). Thigh and shin: their
    bones, twist from the knee's forward direction (faded to the foot's when the
    leg is straight). Ankle: heel->toe and the foot's up. Collars, wrists, hands,
    head and toes keep their rest rotation (no landmark constrains them).
    """
    n = len(lm["root"])
    world = np.zeros((n, sk.NUM_JOINTS, 3, 3))
    local = np.broadcast_to(np.eye(3), (n, sk.NUM_JOINTS, 3, 3)).copy()

    # Pelvis: the root's world rotation.
    g_pelvis = align(_REST_HIP_LINE, _Y, lm["left_hip"] - lm["right_hip"], lm["spine"] - lm["root"])
    local[:, 0] = world[:, 0] = g_pelvis

    # Spine: three equal shares of the pelvis-to-thorax rotation.
    g_thorax = align(_REST_SHOULDER_LINE, _REST_SPINE_TO_NECK, lm["left_shoulder"] - lm["right_shoulder"],
                     lm["neck"] - lm["spine"])
    share = _fractional(_local(g_pelvis, g_thorax), 1.0 / 3.0)
    for name, parent in (("spine1", 0), ("spine2", J["spine1"]), ("spine3", J["spine2"])):
        local[:, J[name]] = share
        world[:, J[name]] = world[:, parent] @ share

    # Neck and head.
    shoulder_line = lm["left_shoulder"] - lm["right_shoulder"]
    head_side = shoulder_line
    if "head_left" in lm:  # fade to the shoulder line where the head points are unreliable
        w = np.asarray(lm.get("head_side_weight", 1.0), np.float64).reshape(-1, 1)
        head_side = w * _unit(lm["head_left"] - lm["head_right"]) + (1 - w) * _unit(shoulder_line)
    g_neck = align(sk.HEAD_TURN_AXIS, _X, lm["head"] - lm["neck"], head_side)
    # The head points sometimes drift round the head: no turn beyond what a neck can do.
    local[:, J["neck"]] = limit_head_turn(_local(world[:, J["spine3"]], g_neck))
    g_neck = world[:, J["spine3"]] @ local[:, J["neck"]]
    world[:, J["neck"]] = g_neck
    world[:, J["head"]] = g_neck
    for side in ("left", "right"):
        world[:, J[f"{side}_collar"]] = world[:, J["spine3"]]

    for side in ("left", "right"):
        # Arm: upper arm and forearm share the elbow's bend-plane normal.
        shoulder, elbow, wrist = (lm[f"{side}_{p}"] for p in ("shoulder", "elbow", "wrist"))
        upper, fore = elbow - shoulder, wrist - elbow
        off_elbow, off_wrist = OFFSETS[J[f"{side}_elbow"]], OFFSETS[J[f"{side}_wrist"]]
        normal_rest = _unit(np.cross(off_elbow, _Z))  # flexion brings the forearm forward
        g_collar = world[:, J[f"{side}_collar"]]
        w = _bend_weight(upper, fore)
        normal = w * _unit(np.cross(upper, fore)) + (1 - w) * (g_collar @ normal_rest)
        g_upper = align(off_elbow, normal_rest, upper, normal)
        g_fore = align(off_wrist, normal_rest, fore, normal)
        local[:, J[f"{side}_shoulder"]] = _local(g_collar, g_upper)
        local[:, J[f"{side}_elbow"]] = _local(g_upper, g_fore)
        world[:, J[f"{side}_shoulder"]] = g_upper
        world[:, J[f"{side}_elbow"]] = g_fore
        world[:, J[f"{side}_wrist"]] = world[:, J[f"{side}_hand"]] = g_fore

        # Leg: the SMPL hip-joint centre placed in the source, then thigh and shin.
        hip = lm["root"] + (g_pelvis @ OFFSETS[J[f"{side}_hip"]]) / scale
        knee, ankle = lm[f"{side}_knee"], lm[f"{side}_ankle"]
        heel, toe = lm[f"{side}_heel"], lm[f"{side}_toe"]
        thigh, shin = knee - hip, ankle - knee
        knee_forward = knee - 0.5 * (hip + ankle)
        w = _bend_weight(thigh, shin)
        forward = w * _unit(knee_forward) + (1 - w) * _unit(toe - heel)
        off_knee, off_ankle = OFFSETS[J[f"{side}_knee"]], OFFSETS[J[f"{side}_ankle"]]
        g_thigh = align(off_knee, _Z, thigh, forward)
        g_shin = align(off_ankle, _Z, shin, forward)
        sole_rest = OFFSETS[J[f"{side}_foot"]] * np.array([1.0, 0.0, 1.0])  # flat foot, SMPL's toe-out
        g_foot = align(sole_rest, _Y, toe - heel, ankle - heel)
        local[:, J[f"{side}_hip"]] = _local(g_pelvis, g_thigh)
        local[:, J[f"{side}_knee"]] = _local(g_thigh, g_shin)
        local[:, J[f"{side}_ankle"]] = _local(g_shin, g_foot)
    return local


def source_scale(root: np.ndarray, toes: np.ndarray) -> float:
    """SMPL's standing root height over its toe-base joints divided by the source's (robust)."""
    smpl = -(OFFSETS[J["left_hip"]] + OFFSETS[J["left_knee"]] + OFFSETS[J["left_ankle"]]
             + OFFSETS[J["left_foot"]])[1]
    source = np.percentile(root[:, 2] - toes[..., 2].min(axis=1), 90)
    return float(smpl / source)


def retarget_error(rotations: np.ndarray, lm: dict, scale: float) -> dict:
    """Distances (m) between our landmarks (:func:`smpl_landmarks`) and the source's, the source scaled by
    ``scale`` about its root and both roots at the origin.

    So this measures the pose (IK fit and bone-proportion differences), not the root path.
    """
    ours = smpl_landmarks(rotations, np.zeros((len(rotations), 3)))
    names = [n for n in ERROR_LANDMARKS if n in lm]
    dist = np.stack([np.linalg.norm(ours[n] - (lm[n] - lm["root"]) * scale, axis=-1) for n in names], axis=1)
    return {"mean": float(dist.mean()), "max": float(dist.max()),
            "per_joint_mean": {n: float(d) for n, d in zip(names, dist.mean(0))}}


def bone_direction_error(rotations: np.ndarray, lm: dict, scale: float) -> float:
    """Mean angle (degrees) between our and the source's upper arm, forearm, thigh and shin directions."""
    joints = sk.forward_kinematics(rotations, np.zeros((len(rotations), 3)))[0]
    angles = []
    for side in ("left", "right"):
        for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("knee", "ankle")):
            ours = joints[:, J[f"{side}_{b}"]] - joints[:, J[f"{side}_{a}"]]
            theirs = lm[f"{side}_{b}"] - lm[f"{side}_{a}"]
            angles.append(np.degrees(np.arccos(np.clip((_unit(ours) * _unit(theirs)).sum(-1), -1, 1))))
        ours = joints[:, J[f"{side}_knee"]] - joints[:, J[f"{side}_hip"]]
        hip = joints[:, J[f"{side}_hip"]] / scale + lm["root"]
        theirs = lm[f"{side}_knee"] - hip
        angles.append(np.degrees(np.arccos(np.clip((_unit(ours) * _unit(theirs)).sum(-1), -1, 1))))
    return float(np.mean(angles))


# ----------------------------------------------------------------------------- root path


def planted_weights(feet: np.ndarray, fps: float, slow: float = 0.15, fast: float = 0.4) -> np.ndarray:
    """(T, K, 3) foot positions -> (T, K) weights: 1 below ``slow`` m/s, 0 above ``fast``."""
    speed = np.zeros(feet.shape[:2])
    speed[1:] = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps
    speed[0] = speed[1] if len(speed) > 1 else 0.0
    return np.clip((fast - speed) / (fast - slow), 0.0, 1.0)


def _solve_path(target, anchor_steps, anchor_w, guide_steps, fit: float, follow: float, pin=None, pin_w=None):
    """Least-squares 1-D path: steps match ``anchor_steps`` where weighted, else ``guide_steps``; stays near ``target``.

    Minimises sum w_t (x_{t+1} - x_t - a_t)^2 + follow (x_{t+1} - x_t - g_t)^2 + fit (x_t - target_t)^2
    (+ pin_w_t (x_t - pin_t)^2), a tridiagonal normal system.
    """
    t = len(target)
    if t == 1:
        return target.copy()
    c = anchor_w + follow  # (T-1,) weight of each step
    rhs_step = anchor_w * anchor_steps + follow * guide_steps  # (T-1,)
    diag = np.full(t, fit, dtype=np.float64)
    diag[:-1] += c
    diag[1:] += c
    off = -c
    rhs = fit * target
    if pin is not None:
        diag += pin_w
        rhs = rhs + pin_w * pin
    rhs[:-1] -= rhs_step
    rhs[1:] += rhs_step
    bands = np.zeros((3, t))
    bands[0, 1:] = off
    bands[1] = diag
    bands[2, :-1] = off
    return solve_banded((1, 1), bands, rhs)


def solve_root_path(rotations: np.ndarray, guide: np.ndarray, fps: float, fit: float = 0.02,
                    follow: float = 0.05, floor_height: float = 0.025) -> np.ndarray:
    """Root positions (T, 3) for ``rotations`` (T, 24, 3, 3) that keep planted feet still and on the floor.

    ``guide`` (T, 3) is the source root path already scaled to SMPL's size. A
    foot joint counts as planted when it is slow with the root on the guide.
    Horizontally, while a foot is planted the root step cancels the foot's step
    relative to the root (no sliding). Vertically, planted toe-base joints are
    pulled to ``floor_height`` above a floor level with the guide's median
    (SMPL's legs differ from the source's, so the guide's height alone lets feet
    float or sink). Elsewhere the root follows the guide's steps, and a weak
    pull keeps it near the guide overall.
    """
    rel = sk.forward_kinematics(rotations, np.zeros((len(rotations), 3)))[0][:, list(sk.CONTACT_INDICES)]  # (T, 4, 3)
    w = planted_weights(rel + guide[:, None], fps)  # (T, 4)
    w_step = np.minimum(w[1:], w[:-1])  # a step is anchored when the foot is planted at both ends
    d_rel = np.diff(rel, axis=0)  # (T-1, 4, 3)
    wsum = w_step.sum(1)  # (T-1,)
    anchor = -(w_step[..., None] * d_rel).sum(1) / np.maximum(wsum, 1e-9)[:, None]  # (T-1, 3)
    anchor_w = np.minimum(wsum, 1.0)
    guide_steps = np.diff(guide, axis=0)
    out = np.array(guide, np.float64, copy=True)
    for axis in (0, 1):
        out[:, axis] = _solve_path(guide[:, axis].astype(np.float64), anchor[:, axis], anchor_w,
                                   guide_steps[:, axis], fit, follow)
    toes = [sk.CONTACT_JOINTS.index(n) for n in sk.CONTACT_JOINTS if n.endswith("_foot")]
    w_toe = w[:, toes]  # (T, 2)
    pin_w = w_toe.sum(1)
    if pin_w.sum() > 0:
        # The root height that puts the planted toes down, and the guide's level relative to it.
        pin = (w_toe * (floor_height - rel[:, toes, 2])).sum(1) / np.maximum(pin_w, 1e-9)
        level = np.median(pin[pin_w > 0.5] - guide[pin_w > 0.5, 2]) if (pin_w > 0.5).any() else 0.0
        out[:, 2] = _solve_path(guide[:, 2] + level, np.zeros(len(guide) - 1), np.zeros(len(guide) - 1),
                                guide_steps[:, 2], fit, follow, pin=pin, pin_w=np.minimum(pin_w, 1.0))
    return out
