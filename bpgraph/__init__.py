"""bpgraph: make backpropagation visible.

Record numpy ops into a networkx DAG, differentiate it in reverse mode, query its paths,
and draw where each cost term's gradient flows.
"""

from .errors import (BpgraphError, GraphError, NonFiniteError, NonFiniteWarning, OpError,
                     UnknownNodeError)
from .graph import Graph
from .gradcheck import GradcheckReport, LeafCheck, gradcheck
from .ops import (abs, apply, binary_cross_entropy, dropout, exp, l2_penalty, linear, log,
                  log_softmax, maximum, mean, relu, reshape, sigmoid, softmax,
                  softmax_cross_entropy, sqrt, square, sum, tanh, transpose)
from .tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "BpgraphError", "GraphError", "NonFiniteError", "NonFiniteWarning", "OpError",
    "UnknownNodeError", "Graph", "Tensor", "GradcheckReport", "LeafCheck", "gradcheck",
    "abs", "apply", "binary_cross_entropy", "dropout", "exp", "l2_penalty", "linear", "log",
    "log_softmax", "maximum", "mean", "relu", "reshape", "sigmoid", "softmax",
    "softmax_cross_entropy", "sqrt", "square", "sum", "tanh", "transpose", "__version__",
]
