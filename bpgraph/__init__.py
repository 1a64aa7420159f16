"""bpgraph: make backpropagation visible.

Record numpy ops into a networkx DAG, differentiate it in reverse mode, query its paths,
and draw where each cost term's gradient flows.

Names are loaded on first use (PEP 562), so ``bpgraph --help`` starts without importing
numpy and networkx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    **{name: "errors" for name in ("BpgraphError", "GraphError", "NonFiniteError",
                                   "NonFiniteWarning", "OpError", "UnknownNodeError")},
    "Graph": "graph",
    "Tensor": "tensor",
    **{name: "fdcheck" for name in ("GradcheckReport", "LeafCheck", "gradcheck")},
    **{name: "ops" for name in ("abs", "apply", "binary_cross_entropy", "dropout", "exp",
                                "l2_penalty", "linear", "log", "log_softmax", "maximum", "mean",
                                "relu", "reshape", "sigmoid", "softmax", "softmax_cross_entropy",
                                "sqrt", "square", "sum", "tanh", "transpose")},
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bpgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .errors import (BpgraphError, GraphError, NonFiniteError, NonFiniteWarning, OpError,
                         UnknownNodeError)
    from .fdcheck import GradcheckReport, LeafCheck, gradcheck
    from .graph import Graph
    from .ops import (abs, apply, binary_cross_entropy, dropout, exp, l2_penalty, linear, log,
                      log_softmax, maximum, mean, relu, reshape, sigmoid, softmax,
                      softmax_cross_entropy, sqrt, square, sum, tanh, transpose)
    from .tensor import Tensor
