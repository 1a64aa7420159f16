"""Arrays to JSON and back: nested lists (a bare number for 0-d), NaN and infinities spelled as
the strings in :data:`NONFINITE`; reading checks shape, dtype and range level by level."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..ops import all_finite
from .schema import NONFINITE, At, json_type


def to_json(arr: np.ndarray) -> Any:
    """Nested lists (a bare number for 0-d), with NaN/inf spelled as in :data:`NONFINITE`."""
    if arr.dtype.kind != "f" or all_finite(arr):
        return arr.tolist()
    spelled = arr.astype(object)
    spelled[np.isnan(arr)] = "nan"
    spelled[arr == np.inf] = "inf"
    spelled[arr == -np.inf] = "-inf"
    return spelled.tolist()


def from_json(at: At, field: str, value: Any, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Nested lists -> array of ``shape`` and ``dtype``, checked level by level (no recursion)."""
    level = [value]
    for depth, n in enumerate(shape):
        for k, item in enumerate(level):
            if type(item) is not list or len(item) != n:
                found = f"a list of {len(item)}" if type(item) is list else json_type(item)
                at.fail(field, f"ragged or not of shape {list(shape)}: {field}{_index(k, shape[:depth])} "
                               f"should be a list of {n}, found {found}")
        level = list(itertools.chain.from_iterable(level))
    kinds = set(map(type, level))
    if list in kinds:
        at.fail(field, f"nested deeper than its shape {list(shape)}")
    allowed, what = ({bool}, "true/false") if dtype == "bool" else ({int}, "integers") if "int" in dtype \
        else ({int, float, str}, 'numbers (or "nan", "inf", "-inf")')
    if not kinds <= allowed:
        k = next(k for k, x in enumerate(level) if type(x) not in allowed)
        at.fail(field, f"{field}{_index(k, shape)} is {json_type(level[k])}; a {dtype} array holds {what}")
    if "int" in dtype and level and not np.iinfo(dtype).min <= min(level) <= max(level) <= np.iinfo(dtype).max:
        at.fail(field, f"a number does not fit {dtype} ({np.iinfo(dtype).min} to {np.iinfo(dtype).max})")
    spelled = [x for x in level if type(x) is str] if str in kinds else []
    if spelled:
        bad = next((x for x in spelled if x not in NONFINITE), None)
        if bad is not None:
            at.fail(field, f"the string {bad!r:.40} is not a number; non-finite numbers are written "
                           '"nan", "inf" or "-inf"')
        level = [NONFINITE[x] if type(x) is str else x for x in level]
    try:
        with np.errstate(over="ignore"):
            arr = np.array(level, dtype=dtype).reshape(shape)
    except (OverflowError, ValueError) as exc:
        at.fail(field, f"a number does not fit {dtype}: {exc}")
    if arr.dtype.kind == "f" and np.count_nonzero(~np.isfinite(arr)) != len(spelled):
        at.fail(field, f"a number is too large for {dtype}; write infinities as \"inf\" or \"-inf\"")
    return arr


def _index(k: int, shape: tuple[int, ...]) -> str:
    """Flat position ``k`` as ``[i][j]`` within ``shape``."""
    return "".join(f"[{int(i)}]" for i in np.unravel_index(k, shape)) if shape else ""
