"""Train/test splits by whole dance, never by window.

Tang 2018: a fixed list of held-out dances covering each style (1 cha-cha, 2
rumba, 4 waltz of which one Viennese tempo), chosen among the dances that pass
the beat check. AIST++: the official crossmodal lists (:mod:`.aistpp`). Own
folders: ``test.txt`` or a name hash (:mod:`.folder`). Stretched copies of a
dance inherit its split (:func:`check_disjoint` enforces it).
"""

from __future__ import annotations

from ...errors import DataError

TANG2018_TEST = ("DANCE_C_6", "DANCE_R_4", "DANCE_R_9", "DANCE_W_4", "DANCE_W_15", "DANCE_W_22", "DANCE_W_27")
"""Held-out Tang 2018 dances: cha-cha C_6; rumba R_4, R_9; waltz W_4, W_22, W_27 and the fast W_15."""


def tang2018_split(name: str) -> str:
    return "test" if name in TANG2018_TEST else "train"


def check_disjoint(names, sources, splits) -> None:
    """Raise DataError if one source dance has clips in more than one split."""
    seen: dict[str, str] = {}
    for name, source, split in zip(names, sources, splits):
        if split not in ("train", "test"):
            raise DataError(f"{name}: split {split!r} is neither 'train' nor 'test'.")
        if seen.setdefault(source, split) != split:
            raise DataError(f"Dance {source} appears in both the train and the test split (clip {name}).")
