"""Which bone of a character plays which SMPL joint: rig-family tables, a name matcher, chain filling.

A bone map assigns to SMPL joints (:data:`skeleton.JOINT_NAMES`) the names of a
character's bones; joints without a bone are left out. It is found from the
rig-family tables in ``rigs/*.json`` (Mixamo, Unreal mannequin, VRM, Blender's
metarig, Rigify …, one file per family: data, not code), or by matching names
(left/right spelled ``.L``/``_l``/``Left``/``L_`` …, body-part synonyms) for any
other humanoid. Spine and neck chains of any length are filled by height, so a
rig with one or five spine bones maps as well as SMPL's three.

NumPy and the standard library only: Blender's own process uses this module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import skeleton as sk
from ..errors import M2DError

RIGS_DIR = Path(__file__).resolve().parent / "rigs"

REQUIRED = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
            "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "head")
"""Joints a character must have bones for to dance (the rest is optional: collars, toes, spine, hands)."""

CHAIN_PARENT = {
    "spine1": "pelvis", "spine2": "spine1", "spine3": "spine2", "neck": "spine3", "head": "neck",
    "left_hip": "pelvis", "left_knee": "left_hip", "left_ankle": "left_knee", "left_foot": "left_ankle",
    "right_hip": "pelvis", "right_knee": "right_hip", "right_ankle": "right_knee", "right_foot": "right_ankle",
    "left_collar": "spine3", "left_shoulder": "left_collar", "left_elbow": "left_shoulder",
    "left_wrist": "left_elbow", "left_hand": "left_wrist",
    "right_collar": "spine3", "right_shoulder": "right_collar", "right_elbow": "right_shoulder",
    "right_wrist": "right_elbow", "right_hand": "right_wrist",
}
"""Each SMPL joint's parent (as :data:`skeleton.PARENTS`, by name)."""

SPINE = ("spine1", "spine2", "spine3")


@dataclass(frozen=True)
class RigFamily:
    """One ``rigs/*.json`` table."""

    key: str
    name: str
    description: str
    bones: dict
    """SMPL joint name -> candidate bone names (the first that exists is used)."""
    hold: tuple = ()
    """Bones keyed at rest in every take (controls that would otherwise add to the mapped ones)."""
    settings: dict = field(default_factory=dict)
    """Bone -> {custom property: value} keyed in every take (e.g. Rigify's IK/FK switches set to FK)."""


@lru_cache(maxsize=None)
def families() -> dict[str, RigFamily]:
    """The rig-family tables, by key (the file's stem, upper case: ``MIXAMO``, ``UE5`` …)."""
    out = {}
    for path in sorted(RIGS_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data["bones"]) - set(sk.JOINT_NAMES)
        if unknown:
            raise ValueError(f"{path.name}: not SMPL joints: {sorted(unknown)}")
        out[path.stem.upper()] = RigFamily(path.stem.upper(), data["name"], data["description"],
                                           {k: tuple(v) for k, v in data["bones"].items()},
                                           tuple(data.get("hold", ())), data.get("settings", {}))
    return out


def strip_prefix(name: str) -> str:
    """A bone name without a namespace prefix such as ``mixamorig:`` or ``mixamorig1:``."""
    return name.rsplit(":", 1)[-1]


# ----------------------------------------------------------------------------- bone maps


@dataclass
class BoneMap:
    """SMPL joint name -> bone name, for the joints the character has."""

    bones: dict
    family: str = "AUTO"
    """The table it came from (``MIXAMO`` …), ``NAMES`` for the name matcher, ``CUSTOM`` when edited."""

    def bone(self, joint: str) -> str | None:
        return self.bones.get(joint) or None

    def missing(self, required=REQUIRED) -> list[str]:
        return [j for j in required if not self.bone(j)]

    def to_json(self) -> str:
        return json.dumps({"format": "music2dance-bone-map", "family": self.family,
                           "bones": {j: self.bones[j] for j in sk.JOINT_NAMES if self.bone(j)}}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "BoneMap":
        try:
            data = json.loads(text)
            bones = data["bones"]
            if not isinstance(bones, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise M2DError("Not a Music2Dance bone map: expected JSON with a \"bones\" object "
                           "(SMPL joint -> bone name).") from None
        unknown = sorted(set(bones) - set(sk.JOINT_NAMES))
        if unknown:
            raise M2DError(f"The bone map names joints SMPL does not have: {', '.join(unknown)}. "
                           f"Use {', '.join(sk.JOINT_NAMES[:4])} ….")
        return cls({j: str(b) for j, b in bones.items() if b}, str(data.get("family", "CUSTOM")))

    def check(self, bone_names, owner: str = "The armature", require: bool = True) -> None:
        """Raise M2DError naming what is wrong: a bone that does not exist, a bone used twice,
        a required joint without a bone (unless ``require`` is False). ``owner``: how the message names
        the armature."""
        existing = set(bone_names)
        absent = [f"{j} -> {b}" for j, b in self.bones.items() if b and b not in existing]
        if absent:
            raise M2DError(f"The bone map of {owner} names bones it does not have ({'; '.join(absent)}). "
                           "Pick them again in the Dance panel's bone map, or click Auto-map.")
        used: dict[str, list[str]] = {}
        for j, b in self.bones.items():
            if b:
                used.setdefault(b, []).append(j)
        twice = [f"{b} ({', '.join(js)})" for b, js in used.items() if len(js) > 1]
        if twice:
            raise M2DError(f"The bone map of {owner} uses a bone for more than one joint: {'; '.join(twice)}. "
                           "Each joint needs its own bone.")
        missing = self.missing() if require else []
        if missing:
            named = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            raise M2DError(f"{owner} does not look humanoid: no bone found for {named}. "
                           "Map them in the Character panel's bone map, then generate again.")


def from_family(family: RigFamily, bone_names) -> dict:
    """The bones of ``family``'s table found in ``bone_names`` (prefixes ignored)."""
    by_plain = {}
    for name in bone_names:
        by_plain.setdefault(strip_prefix(name), name)
    out = {}
    for joint, candidates in family.bones.items():
        for candidate in candidates:
            if candidate in by_plain:
                out[joint] = by_plain[candidate]
                break
    return out


# ----------------------------------------------------------------------------- the name matcher

_SIDE_TOKENS = {"l": "left", "left": "left", "lf": "left", "lt": "left",
                "r": "right", "right": "right", "rt": "right", "rg": "right"}

# Body-part words -> SMPL joint stem; checked in this order (longer phrases first).
_PARTS = (
    ("upperleg", "hip"), ("upleg", "hip"), ("thigh", "hip"), ("upperlegs", "hip"),
    ("lowerleg", "knee"), ("calf", "knee"), ("shin", "knee"), ("knee", "knee"), ("leg", "knee"),
    ("toebase", "foot"), ("toes", "foot"), ("toe", "foot"), ("ball", "foot"),
    ("ankle", "ankle"), ("foot", "ankle"),
    ("clavicle", "collar"), ("collar", "collar"), ("shoulder", "collar"),
    ("upperarm", "shoulder"), ("lowerarm", "elbow"), ("forearm", "elbow"), ("elbow", "elbow"),
    ("arm", "shoulder"),
    ("wrist", "wrist"), ("hand", "wrist"),
)
_CENTRE = (("pelvis", "pelvis"), ("hips", "pelvis"), ("hip", "pelvis"), ("neck", "neck"), ("head", "head"))
_SKIP = ("twist", "roll", "ik", "pole", "target", "end", "nub", "tip", "helper", "mch", "org", "def", "tweak",
         "finger", "thumb", "index", "middle", "ring", "pinky", "little", "carpal", "meta", "palm", "eye",
         "jaw", "breast", "ear", "hair", "tail", "skirt", "bust")


def _words(name: str) -> tuple[str, list[str]]:
    """(side, lower-case words) of a bone name: side is 'left', 'right' or ''."""
    plain = strip_prefix(name)
    plain = re.sub(r"([a-z])([A-Z])", r"\1 \2", plain)  # LeftUpLeg -> Left Up Leg
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", plain) if t]
    side = ""
    rest = []
    for t in tokens:
        low = t.lower()
        if low in _SIDE_TOKENS and not side:
            side = _SIDE_TOKENS[low]
        else:
            rest.append(low)
    return side, rest


def _part(words: list[str], side: str) -> str | None:
    if any(w.startswith(_SKIP) for w in words):
        return None
    joined = "".join(words)
    for word, stem in (_PARTS if side else _CENTRE):
        if word in joined:
            return stem
    return None


def match_names(bone_names, driven=()) -> dict:
    """SMPL joint -> bone, by name alone (first match in the armature's order wins; driven bones skipped)."""
    out = {}
    for name in bone_names:
        if name in driven:
            continue
        side, words = _words(name)
        stem = _part(words, side)
        if stem is None:
            continue
        joint = f"{side}_{stem}" if side else stem
        if joint in sk.JOINT_INDEX and joint not in out:
            out[joint] = name
    return out


# ----------------------------------------------------------------------------- chains


def _ancestors(bone: str, parents: dict) -> list[str]:
    out = []
    bone = parents.get(bone)
    while bone is not None:
        out.append(bone)
        bone = parents.get(bone)
    return out


def fill_chains(bones: dict, parents: dict, heads: dict, driven=()) -> dict:
    """Add the spine (and a missing neck) from the bones between the pelvis and the head.

    ``parents``: bone -> parent bone (None at a root); ``heads``: bone -> (3,) rest head;
    ``driven``: bones that constraints or drivers move (never keyed, so never chosen).
    The bones between the pelvis's bone and the neck's (or head's) are assigned to
    spine1..3 by their height along that stretch, as SMPL's spine joints lie.
    """
    out = dict(bones)
    pelvis, head = out.get("pelvis"), out.get("head")
    if not pelvis or not head:
        return out
    top = out.get("neck") or head
    path = _ancestors(top, parents)
    if pelvis not in path:
        return out
    between = [b for b in reversed(path[:path.index(pelvis)]) if b not in driven]  # pelvis up to below top
    if not out.get("neck") and between:
        out["neck"] = between.pop()  # the bone just below the head
        top = out["neck"]
    free = [b for b in between if b not in out.values()]
    wanted = [j for j in SPINE if not out.get(j)]
    if not free or not wanted:
        return out
    rest = sk.rest_joint_positions()
    base, span = rest[0], rest[sk.JOINT_INDEX["neck"]] - rest[0]
    fraction = {j: float((rest[sk.JOINT_INDEX[j]] - base) @ span / (span @ span)) for j in SPINE}
    a, b = np.asarray(heads[pelvis], float), np.asarray(heads[top], float)
    along = {bone: float((np.asarray(heads[bone], float) - a) @ (b - a) / max((b - a) @ (b - a), 1e-12))
             for bone in free}
    taken = set()
    for joint in wanted:  # in order spine1, spine2, spine3: each takes the nearest free bone above the last
        options = [bone for bone in free if bone not in taken]
        if not options:
            break
        best = min(options, key=lambda bone: abs(along[bone] - fraction[joint]))
        if len(free) >= len(SPINE) or abs(along[best] - fraction[joint]) < 0.2:
            out[joint] = best
            taken.update(free[:free.index(best) + 1])
    return out


def auto_map(bone_names, parents: dict, heads: dict, family: str = "AUTO", driven=()) -> BoneMap:
    """The best bone map for an armature: from ``family``'s table, or (``AUTO``) the table that
    maps the most joints, else the name matcher; spine chains filled by height. ``driven``: bones
    moved by constraints or drivers, left out of the name matcher and the chains."""
    names = list(bone_names)
    tables = families()
    if family not in ("AUTO", "NAMES"):
        if family not in tables:
            raise M2DError(f"Unknown rig preset {family!r}; choose one of {', '.join(tables)} or AUTO.")
        found, chosen = from_family(tables[family], names), family
    else:
        found, chosen = {}, "NAMES"
        if family == "AUTO":
            for key, table in tables.items():
                candidate = from_family(table, names)
                if len(candidate) > len(found) and not BoneMap(candidate).missing():
                    found, chosen = candidate, key
        if not found:
            found, chosen = match_names(names, driven), "NAMES"
    return BoneMap(fill_chains(found, parents, heads, driven), chosen)
