"""What the analysis reports share: read-only arrays, norms, number formats, lookup by name."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import UnknownNodeError


def readonly(a: Any) -> np.ndarray:
    a = np.asarray(a)
    a.flags.writeable = False
    return a


def norm(a: Any) -> Any:  # float, or None for None; in float64 (or complex128) whatever a's dtype
    return None if a is None else float(np.linalg.norm(np.asarray(a, np.result_type(a, np.float64)).ravel()))


def json_ready(data: Any) -> Any:
    """``data`` for strict JSON: NaN and infinities as "nan", "inf", "-inf", as graph files spell
    them, and complex numbers as text."""
    if isinstance(data, dict):
        return {key: json_ready(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return list(map(json_ready, data))
    if isinstance(data, float) and not math.isfinite(data):
        return "nan" if math.isnan(data) else "inf" if data > 0 else "-inf"
    return str(data) if isinstance(data, complex) else data


def sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.3e}"


def array_json(a: np.ndarray) -> Any:
    """Arrays of up to 16 values as nested lists; larger ones as their shape and norm only."""
    return a.tolist() if a.size <= 16 else {"shape": list(a.shape), "norm": norm(a)}


def describe_value(a: np.ndarray) -> str:
    """A scalar's value, a tiny array's values, else shape and norm."""
    if a.size == 1:
        return f"{float(a.ravel()[0]):.6g}"
    if a.size <= 4:
        return "[" + ", ".join(f"{float(v):.4g}" for v in a.ravel()) + f"] (shape {a.shape})"
    return f"shape {a.shape}, norm {norm(a):.3e}"


def with_values(out: dict[str, Any], values: bool, key: str, array: np.ndarray | None) -> dict[str, Any]:
    """``out`` plus ``array`` as a nested list under ``key``, when values are asked for and there."""
    if values and array is not None:
        out[key] = array.tolist()
    return out


def by_name(items: Sequence[Any], name: str, field: str = "name") -> Any:
    """The item whose ``field`` is ``name``; UnknownNodeError ("did you mean") when none is."""
    for item in items:
        if getattr(item, field) == name:
            return item
    raise UnknownNodeError(name, [getattr(item, field) for item in items])
