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

# How far each collar joint lies from the shoulders' midpoint towards its shoulder, at rest (0..1).
_COLLAR_FRACTION = {
    side: float(np.linalg.norm(_REST[J[f"{side}_collar"]] - _REST_NECK)
                / np.linalg.norm(_REST[J[f"{side}_shoulder"]] - _REST_NECK)) for side in ("left", "right")}

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


def fit_rotations(lm: dict, scale: float, extremities: bool = True) -> np.ndarray:
    """Landmarks (dict of (N, 3), world metres, source scale) -> (N, 24, 3, 3) SMPL local rotations.

    Pelvis: hip line and root->spine. Spine1-3 share the pelvis-to-thorax turn
    (thorax: shoulder line and spine->neck). Neck: neck->head, twist from the
    head points, folded into a neck's range (:func:`~inference.cleanup.limits.limit_head_turn`).
    Rest directions of these landmark pairs are taken from SMPL's
    rest pose (hips, shoulders, "spine" and "head" landmarks as defined above).
    Upper arm and forearm: their bones, twist from the elbow's bend plane
    (faded to the thorax's when the arm is straight). Thigh and shin: their
    bones, twist from the knee's forward direction (faded to the foot's when the
    leg is straight). Ankle: heel->toe and the foot's up. Collars and wrists: see
    :func:`collar_rotations` and :func:`wrist_rotation` (used where their landmarks are
    given; ``extremities=False`` keeps them at rest, as the first model's data had them).
    Hands, head and toes keep their rest rotation (no landmark constrains them).
    """
    n = len(lm["root"])
    world = np.zeros((n, sk.NUM_JOINTS, 3, 3))
    local = np.broadcast_to(np.eye(3), (n, sk.NUM_JOINTS, 3, 3)).copy()

    # Pelvis: the root's world rotation.
    g_pelvis = align(_REST_HIP_LINE, _Y, lm["left_hip"] - lm["right_hip"], lm["spine"] - lm["root"])
    local[:, 0] = world[:, 0] = g_pelvis

    # Spine: three equal shares of the pelvis-to-thorax rotation. With collars fitted, the chest's
    # up (spine->neck) is exact and the shoulder line only turns it: what the shoulders do beyond
    # that is the collars'. Without, the shoulder line is exact (the collars cannot take it up).
    collars = extremities
    if collars:
        g_thorax = align(_REST_SPINE_TO_NECK, _REST_SHOULDER_LINE, lm["neck"] - lm["spine"],
                         lm["left_shoulder"] - lm["right_shoulder"])
    else:
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
    g_chest = world[:, J["spine3"]]
    collar_local = collar_rotations(lm, g_chest) if collars else {}
    for side in ("left", "right"):
        if side in collar_local:
            local[:, J[f"{side}_collar"]] = collar_local[side]
        world[:, J[f"{side}_collar"]] = g_chest @ local[:, J[f"{side}_collar"]]

    for side in ("left", "right"):
        # Arm: upper arm and forearm share the elbow's bend-plane normal.
        shoulder, elbow, wrist = (lm[f"{side}_{p}"] for p in ("shoulder", "elbow", "wrist"))
        upper, fore = elbow - shoulder, wrist - elbow
        off_elbow, off_wrist = OFFSETS[J[f"{side}_elbow"]], OFFSETS[J[f"{side}_wrist"]]
        normal_rest = _unit(np.cross(off_elbow, _Z))  # flexion brings the forearm forward
        g_collar = world[:, J[f"{side}_collar"]]
        w = _bend_weight(upper, fore)
        bend_normal = _unit(np.cross(upper, fore))
        fallback = g_collar @ normal_rest
        marked = forearm_marker_normal(lm, side, fore, bend_normal, w[..., 0]) if extremities else None
        if marked is not None:  # a straight arm turns as its forearm marker says (twist then stays off the wrist)
            marker_normal, trust = marked
            fallback = _unit(trust[:, None] * marker_normal + (1 - trust[:, None]) * fallback)
        normal = w * bend_normal + (1 - w) * fallback
        g_upper = align(off_elbow, normal_rest, upper, normal)
        g_fore = align(off_wrist, normal_rest, fore, normal)
        local[:, J[f"{side}_shoulder"]] = _local(g_collar, g_upper)
        local[:, J[f"{side}_elbow"]] = _local(g_upper, g_fore)
        world[:, J[f"{side}_shoulder"]] = g_upper
        world[:, J[f"{side}_elbow"]] = g_fore
        if extremities:
            local[:, J[f"{side}_wrist"]] = wrist_rotation(lm, side, g_fore, wrist)
        world[:, J[f"{side}_wrist"]] = world[:, J[f"{side}_hand"]] = g_fore @ local[:, J[f"{side}_wrist"]]

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


COLLAR_LIMIT_DEG = 35.0
"""Collar rotations are softly limited to this (a clavicle's range), so a marker glitch cannot whip them."""
WRIST_TWIST_LIMIT_DEG = 70.0
WRIST_BEND_LIMIT_DEG = 60.0
MIN_MARKER_OFFSET = 0.01
"""A forearm marker closer than this (m, median) to the elbow-wrist line gives no twist."""


def min_rotation(u, v):
    """(..., 3, 3) the smallest rotation carrying unit directions ``u`` onto ``v``."""
    axis = np.cross(u, v)
    angle = np.arctan2(np.linalg.norm(axis, axis=-1), (u * v).sum(-1))
    return sk.axis_angle_to_matrix(_unit(axis) * angle[..., None])


def soft_limit(rotation, limit_deg):
    """``rotation`` (..., 3, 3) with turns up to half the limit L kept and larger ones eased (tanh) to under L."""
    aa = sk.matrix_to_axis_angle(rotation)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * np.radians(limit_deg)
    eased = np.where(angle <= half, angle, half + half * np.tanh((angle - half) / half))
    return sk.axis_angle_to_matrix(_unit(aa) * eased)


def _neutral(directions):
    """(N, 3) unit directions -> their (3,) neutral: the normalised component-wise median over the sequence."""
    return _unit(np.median(directions, axis=0))


def collar_rotations(lm: dict, g_chest) -> dict:
    """Collar local rotations {side: (N, 3, 3)} from the shoulder points relative to the chest.

    Each collar's pivot is a point fixed in the chest frame ``g_chest`` (N, 3, 3): from where
    the shoulders' midpoint sits over the sequence (median, relative to the "spine" landmark),
    as far towards that side's shoulder as SMPL's collar joint lies between its shoulders.
    Each collar turns its shoulder point's direction from the pivot away from that
    direction's neutral (median over the sequence, in the chest frame) by the smallest
    rotation, softly limited to :data:`COLLAR_LIMIT_DEG`. A shrug raises both collars; one
    shoulder dropped against the other lowers one and raises the other. The chest's turn
    is fitted to the shoulder line, so the shoulders reaching forward or back in turn shows
    as the chest's twist, not the collars'.
    """
    to_chest = np.swapaxes(g_chest, -1, -2)

    def chest(points):  # (N, 3) world -> chest frame, relative to the "spine" landmark
        return (to_chest @ (points - lm["spine"])[..., None])[..., 0]

    middle = np.median(chest(lm["neck"]), axis=0)  # (3,)
    out = {}
    for side in ("left", "right"):
        shoulder = chest(lm[f"{side}_shoulder"])
        pivot = middle + _COLLAR_FRACTION[side] * (np.median(shoulder, axis=0) - middle)
        rel = shoulder - pivot  # (N, 3)
        d = _unit(rel)
        out[side] = soft_limit(min_rotation(_neutral(d), d), COLLAR_LIMIT_DEG)
    return out


def _median_angle(angles):
    """The neutral of a sequence of angles: the direction of the component-wise median of their unit vectors."""
    return float(np.arctan2(np.median(np.sin(angles)), np.median(np.cos(angles))))


def _marker_offset(lm: dict, side: str, axis):
    """A forearm marker's offset from the elbow-wrist line (N, 3), its length's trust (N,) and
    whether it is usable at all (median offset at least :data:`MIN_MARKER_OFFSET`)."""
    marker = lm.get(f"{side}_forearm")
    if marker is None:
        return None, None, False
    rel = marker - lm[f"{side}_elbow"]
    perp = rel - (rel * axis).sum(-1, keepdims=True) * axis
    dist = np.linalg.norm(perp, axis=-1)
    med = np.median(dist)
    trust = np.clip((dist / max(med, 1e-9) - 0.3) / 0.4, 0.0, 1.0)
    return perp, trust, med >= MIN_MARKER_OFFSET


def forearm_marker_normal(lm: dict, side: str, fore, bend_normal, bend_weight):
    """The arm's bend-plane normal (N, 3) a forearm marker implies, and its trust (N,); None without one.

    Where the elbow is bent, the marker's angle about the forearm from the bend-plane normal is
    measured; its median over those frames is the marker's neutral angle. Turning the
    marker's offset back by that angle gives a normal for frames whose elbow is too straight to
    define a plane, so a straight arm's twist is the whole arm's, not the wrist's.
    """
    axis = _unit(fore)
    perp, trust, usable = _marker_offset(lm, side, axis)
    if not usable:
        return None
    angle = np.arctan2((np.cross(bend_normal, perp) * axis).sum(-1), (bend_normal * perp).sum(-1))
    use = (bend_weight > 0.9) & (trust > 0.5)
    neutral = _median_angle(angle[use] if use.any() else angle)
    u = _unit(perp)
    c, s_ = np.cos(-neutral), np.sin(-neutral)
    turned = u * c + np.cross(axis, u) * s_ + axis * (axis * u).sum(-1, keepdims=True) * (1 - c)  # Rodrigues
    return _unit(turned), trust


def wrist_rotation(lm: dict, side: str, g_fore, wrist) -> np.ndarray:
    """A wrist's local rotation (N, 3, 3): twist about the forearm, then the hand's bend.

    Twist: a forearm marker off the elbow-wrist line (landmark ``<side>_forearm``) turns
    with the hand about the forearm; its angle about the line in the forearm's frame
    ``g_fore``, from its median, is the wrist's twist (trusted less where the marker
    comes near the line). Bend: a hand marker (``<side>_hand``) seen from the wrist in the
    twisted frame; the smallest rotation from its neutral direction (median over the
    sequence) to it. Each part is used only where its landmark is given; both softly
    limited (:data:`WRIST_TWIST_LIMIT_DEG`, :data:`WRIST_BEND_LIMIT_DEG`).
    """
    n = len(wrist)
    out = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    to_fore = np.swapaxes(g_fore, -1, -2)
    axis = _unit(OFFSETS[J[f"{side}_wrist"]])  # the forearm's direction in its own frame
    perp, trust, usable = _marker_offset(lm, side, _unit(lm[f"{side}_wrist"] - lm[f"{side}_elbow"]))
    if usable:
        perp = (to_fore @ perp[..., None])[..., 0]  # (N, 3) forearm frame
        e1 = _unit(np.cross(axis, _Z) if abs(axis @ _Z) < 0.9 else np.cross(axis, _Y))
        e2 = np.cross(axis, e1)
        phi = np.arctan2(perp @ e2, perp @ e1)
        ref = _median_angle(phi[trust > 0.5] if (trust > 0.5).any() else phi)
        twist = np.angle(np.exp(1j * (phi - ref))) * trust
        out = soft_limit(sk.axis_angle_to_matrix(axis * twist[:, None]), WRIST_TWIST_LIMIT_DEG)
    hand = lm.get(f"{side}_hand")
    if hand is not None:
        d = _unit((np.swapaxes(out, -1, -2) @ to_fore @ (hand - wrist)[..., None])[..., 0])  # twisted frame
        out = out @ soft_limit(min_rotation(_neutral(d), d), WRIST_BEND_LIMIT_DEG)
    return out


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
