"""Humanoid armatures of the common rig families, made from numbers (no downloads), for tests and benches.

:func:`build` describes an armature as bones (name, parent, head, tail, roll) in
armature space; :func:`character` turns it into the retarget's arrays without
Blender, and ``tests/addon`` creates real armatures from the same description.
Proportions, rest pose (T or A), bone rolls, units and axes vary by argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference import skeleton as sk
from inference.retarget.character import Character

SIDES = (("left", "L", "l", "Left"), ("right", "R", "r", "Right"))


@dataclass
class Bone:
    name: str
    parent: str | None
    head: np.ndarray
    tail: np.ndarray
    roll: float = 0.0


@dataclass
class Humanoid:
    """An armature to build: bones in armature space and the object's transform."""

    family: str
    bones: list = field(default_factory=list)
    location: tuple = (0.0, 0.0, 0.0)
    rotation: tuple = (0.0, 0.0, 0.0)
    """Object rotation, XYZ Euler radians."""
    scale: float = 1.0
    expected: dict = field(default_factory=dict)
    """SMPL joint -> the bone a correct bone map gives it."""

    def bone(self, name: str) -> Bone:
        return next(b for b in self.bones if b.name == name)


def _joints(leg: float, arm: float, torso: float, pose: str, knee: float = 1.0, symmetric: bool = True) -> dict:
    """Joint positions (z-up, metres, facing -Y, feet on z = 0) of a person in T or A pose."""
    rest = sk.rest_joint_positions()
    if symmetric:  # left and right alike, as rigs are (SMPL's own joints are not, by a few degrees)
        rest = 0.5 * (rest + rest[list(sk.MIRROR_INDICES)] * np.array([-1.0, 1.0, 1.0]))
    p = {n: rest[i].copy() for i, n in enumerate(sk.JOINT_NAMES)}
    pelvis = p["pelvis"].copy()
    for n in p:  # scale regions about their roots
        if "hip" in n or "knee" in n or "ankle" in n or "foot" in n:
            p[n] = pelvis + (p[n] - pelvis) * np.array([1.0, 1.0, leg])
        elif n != "pelvis":
            p[n] = pelvis + (p[n] - pelvis) * np.array([1.0, 1.0, torso])
    for side in ("left", "right"):  # knee: > 1 a longer thigh and a shorter shin
        p[f"{side}_knee"] = p[f"{side}_hip"] + (p[f"{side}_knee"] - p[f"{side}_hip"]) * knee
    for side in ("left", "right"):
        base = p[f"{side}_collar"].copy()
        for n in ("shoulder", "elbow", "wrist", "hand"):
            j = f"{side}_{n}"
            p[j] = base + (p[j] - base) * arm
    p["head_top"] = p["head"] + np.array([0.0, 0.0, 0.18 * torso])
    for side in ("left", "right"):
        p[f"{side}_toe_tip"] = p[f"{side}_foot"] + np.array([0.0, -0.06, -0.025])  # ball 2.5 cm up
        p[f"{side}_hand_tip"] = p[f"{side}_hand"] + (p[f"{side}_hand"] - p[f"{side}_wrist"]) * 0.8
    if pose == "A":  # arms 45 degrees down, turned about the front axis at the shoulder
        for side, sign in (("left", 1.0), ("right", -1.0)):
            pivot = p[f"{side}_shoulder"].copy()
            turn = sk.axis_angle_to_matrix(np.array([0.0, sign * np.pi / 4, 0.0]))
            for n in ("elbow", "wrist", "hand", "hand_tip"):
                j = f"{side}_{n}"
                p[j] = pivot + turn @ (p[j] - pivot)
    floor = min(p[k][2] for k in ("left_foot", "right_foot", "left_toe_tip", "right_toe_tip"))
    for n in p:
        p[n] = p[n] - np.array([0.0, 0.0, floor])
    return p


def _lerp(a, b, t):
    return a + (b - a) * t


def build(family: str, pose: str = "T", leg: float = 1.0, arm: float = 1.0, torso: float = 1.0,
          knee: float = 1.0, symmetric: bool = True, roll: float | None = None, seed: int = 0, prefix: str = "", spine_bones: int | None = None,
          collars: bool = True, toes: bool = True, extras: bool = True) -> Humanoid:
    """An armature of ``family`` (MIXAMO, UE5, VRM, METARIG, NAMES, SMPL-like proportions scaled).

    ``roll``: None for 0, else the largest random roll (radians) given to every bone;
    ``spine_bones``: override the family's spine length; ``extras``: twist bones, fingers, end bones.
    """
    rng = np.random.default_rng(seed)
    p = _joints(leg, arm, torso, pose, knee, symmetric)
    h = Humanoid(family)

    def add(name, parent, head, tail, joint=None):
        r = 0.0 if roll is None else float(rng.uniform(-roll, roll))
        h.bones.append(Bone(prefix + name, prefix + parent if parent else None, np.array(head, float),
                            np.array(tail, float), r))
        if joint:
            h.expected[joint] = prefix + name
        return prefix + name

    spine_path = [p["pelvis"], p["spine1"], p["spine2"], p["spine3"], p["neck"]]
    lengths = np.cumsum([0] + [np.linalg.norm(b - a) for a, b in zip(spine_path[:-1], spine_path[1:])])

    def along_spine(t):
        d = t * lengths[-1]
        i = min(int(np.searchsorted(lengths, d, side="right")) - 1, len(spine_path) - 2)
        return _lerp(spine_path[i], spine_path[i + 1], (d - lengths[i]) / (lengths[i + 1] - lengths[i]))

    names = {
        "MIXAMO": dict(hips="Hips", spine=["Spine", "Spine1", "Spine2"], neck=["Neck"], head="Head",
                       collar="{S}Shoulder", upper="{S}Arm", fore="{S}ForeArm", hand="{S}Hand",
                       thigh="{S}UpLeg", shin="{S}Leg", foot="{S}Foot", toe="{S}ToeBase"),
        "UE5": dict(hips="pelvis", spine=["spine_01", "spine_02", "spine_03", "spine_04", "spine_05"],
                    neck=["neck_01", "neck_02"], head="head", collar="clavicle_{s}", upper="upperarm_{s}",
                    fore="lowerarm_{s}", hand="hand_{s}", thigh="thigh_{s}", shin="calf_{s}", foot="foot_{s}",
                    toe="ball_{s}"),
        "VRM": dict(hips="J_Bip_C_Hips", spine=["J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_UpperChest"],
                    neck=["J_Bip_C_Neck"], head="J_Bip_C_Head", collar="J_Bip_{L}_Shoulder",
                    upper="J_Bip_{L}_UpperArm", fore="J_Bip_{L}_LowerArm", hand="J_Bip_{L}_Hand",
                    thigh="J_Bip_{L}_UpperLeg", shin="J_Bip_{L}_LowerLeg", foot="J_Bip_{L}_Foot",
                    toe="J_Bip_{L}_ToeBase"),
        "METARIG": dict(hips="spine", spine=["spine.001", "spine.002", "spine.003"],
                        neck=["spine.004", "spine.005"], head="spine.006", collar="shoulder.{L}",
                        upper="upper_arm.{L}", fore="forearm.{L}", hand="hand.{L}", thigh="thigh.{L}",
                        shin="shin.{L}", foot="foot.{L}", toe="toe.{L}"),
        "NAMES": dict(hips="Bip01 Pelvis", spine=["Bip01 Spine", "Bip01 Spine1", "Bip01 Spine2"],
                      neck=["Bip01 Neck"], head="Bip01 Head", collar="Bip01 {L} Clavicle",
                      upper="Bip01 {L} UpperArm", fore="Bip01 {L} Forearm", hand="Bip01 {L} Hand",
                      thigh="Bip01 {L} Thigh", shin="Bip01 {L} Calf", foot="Bip01 {L} Foot",
                      toe="Bip01 {L} Toe0"),
    }[family]
    spine_names = list(names["spine"])
    if spine_bones is not None:
        spine_names = (spine_names + [f"{spine_names[-1]}_{i}" for i in range(1, 9)])[:spine_bones]

    root = None
    if family == "UE5":
        root = add("root", None, (0.0, 0.0, 0.0), (0.0, -0.1, 0.0))
    n_spine = len(spine_names)
    # The spine: hips bone points up to the first spine bone; spine bones split pelvis..neck evenly.
    spine_heads = [along_spine((i + 1) / (n_spine + 1)) for i in range(n_spine)] if n_spine else []
    hips_tail = spine_heads[0] if spine_heads else p["neck"]
    parent = add(names["hips"], root and root[len(prefix):], p["pelvis"], hips_tail, "pelvis")
    for i, name in enumerate(spine_names):
        tail = spine_heads[i + 1] if i + 1 < n_spine else p["neck"]
        parent = add(name, parent[len(prefix):], spine_heads[i], tail)
    chest = parent
    neck_names = names["neck"]
    neck_heads = [_lerp(p["neck"], p["head"], i / len(neck_names)) for i in range(len(neck_names))]
    for i, name in enumerate(neck_names):
        tail = neck_heads[i + 1] if i + 1 < len(neck_names) else p["head"]
        parent = add(name, parent[len(prefix):], neck_heads[i], tail, "neck" if i == 0 else None)
    add(names["head"], parent[len(prefix):], p["head"], p["head_top"], "head")
    if extras and family == "MIXAMO":
        add("HeadTop_End", names["head"], p["head_top"], p["head_top"] + np.array([0.0, 0.0, 0.05]))

    for side, L, s, S in SIDES:
        fmt = dict(S=S, L=L, s=s)
        arm_parent = chest
        if collars:
            arm_parent = add(names["collar"].format(**fmt), chest[len(prefix):], p[f"{side}_collar"],
                             p[f"{side}_shoulder"], f"{side}_collar")
        up = add(names["upper"].format(**fmt), arm_parent[len(prefix):], p[f"{side}_shoulder"],
                 p[f"{side}_elbow"], f"{side}_shoulder")
        fore = add(names["fore"].format(**fmt), up[len(prefix):], p[f"{side}_elbow"], p[f"{side}_wrist"],
                   f"{side}_elbow")
        hand = add(names["hand"].format(**fmt), fore[len(prefix):], p[f"{side}_wrist"], p[f"{side}_hand_tip"],
                   f"{side}_wrist")
        hip_parent = h.bones[[b.name for b in h.bones].index(prefix + names["hips"])].name
        thigh = add(names["thigh"].format(**fmt), hip_parent[len(prefix):], p[f"{side}_hip"], p[f"{side}_knee"],
                    f"{side}_hip")
        shin = add(names["shin"].format(**fmt), thigh[len(prefix):], p[f"{side}_knee"], p[f"{side}_ankle"],
                   f"{side}_knee")
        foot_tail = p[f"{side}_foot"] if toes else p[f"{side}_toe_tip"]
        foot = add(names["foot"].format(**fmt), shin[len(prefix):], p[f"{side}_ankle"], foot_tail,
                   f"{side}_ankle")
        if toes:
            add(names["toe"].format(**fmt), foot[len(prefix):], p[f"{side}_foot"], p[f"{side}_toe_tip"],
                f"{side}_foot")
        if extras:
            if family == "UE5":
                add(f"upperarm_twist_01_{s}", up[len(prefix):], _lerp(p[f"{side}_shoulder"], p[f"{side}_elbow"], 0.5),
                    p[f"{side}_elbow"])
                add(f"thigh_twist_01_{s}", thigh[len(prefix):], _lerp(p[f"{side}_hip"], p[f"{side}_knee"], 0.5),
                    p[f"{side}_knee"])
            finger = {"MIXAMO": "{S}HandIndex1", "UE5": "index_01_{s}", "VRM": "J_Bip_{L}_Index1",
                      "METARIG": "f_index.01.{L}", "NAMES": "Bip01 {L} Finger1"}[family].format(**fmt)
            add(finger, hand[len(prefix):], p[f"{side}_hand_tip"],
                p[f"{side}_hand_tip"] + (p[f"{side}_hand_tip"] - p[f"{side}_wrist"]) * 0.3)
    return h


def centimetres_y_up(h: Humanoid) -> Humanoid:
    """The same character as an FBX import often has it: bones in centimetres, y-up, and the object
    turned +90 degrees about X and scaled 0.01."""
    to_y_up = sk.Y_UP_TO_Z_UP.T
    for b in h.bones:
        b.head, b.tail = 100.0 * to_y_up @ b.head, 100.0 * to_y_up @ b.tail
    h.rotation, h.scale = (np.pi / 2, 0.0, 0.0), 0.01
    return h


def bone_matrix(head, tail, roll: float) -> np.ndarray:
    """A rest matrix (4, 4) with Y along the bone, rolled by ``roll`` (the test's own convention)."""
    y = (np.asarray(tail) - np.asarray(head)) / np.linalg.norm(np.asarray(tail) - np.asarray(head))
    helper = np.array([0.0, 0.0, 1.0]) if abs(y[2]) < 0.9 else np.array([0.0, -1.0, 0.0])
    x = np.cross(y, helper)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    base = np.stack([x, y, z], axis=1)
    m = np.eye(4)
    m[:3, :3] = sk.axis_angle_to_matrix(y * roll) @ base
    m[:3, 3] = head
    return m


def object_matrix(h: Humanoid) -> np.ndarray:
    rx, ry, rz = h.rotation
    rot = (sk.axis_angle_to_matrix(np.array([0.0, 0.0, rz])) @ sk.axis_angle_to_matrix(np.array([0.0, ry, 0.0]))
           @ sk.axis_angle_to_matrix(np.array([rx, 0.0, 0.0])))
    m = np.eye(4)
    m[:3, :3] = rot * h.scale
    m[:3, 3] = h.location
    return m


def character(h: Humanoid) -> Character:
    """The retarget's arrays for ``h`` without Blender."""
    names = tuple(b.name for b in h.bones)
    return Character(
        bone_names=names,
        parents=tuple(names.index(b.parent) if b.parent else -1 for b in h.bones),
        rest=np.stack([bone_matrix(b.head, b.tail, b.roll) for b in h.bones]),
        tails=np.stack([b.tail for b in h.bones]),
        world=object_matrix(h),
    )
