"""bpgraph: make backpropagation visible.

Record numpy ops into a networkx DAG, differentiate it in reverse mode, query its paths,
and draw where each cost term's gradient flows.
"""

from .errors import BpgraphError, GraphError, NonFiniteError, NonFiniteWarning, OpError, UnknownNodeError
from .fdcheck import GradcheckReport, LeafCheck, gradcheck
from .graph import Graph
from .ops import (abs, apply, binary_cross_entropy, dropout, exp, l2_penalty, linear, log, log_softmax,
                  maximum, mean, relu, reshape, sigmoid, softmax, softmax_cross_entropy, sqrt, square, sum,
                  tanh, transpose)
from .tensor import Tensor

__version__ = "0.1.0"
__all__ = ["BpgraphError", "GradcheckReport", "Graph", "GraphError", "LeafCheck", "NonFiniteError",
           "NonFiniteWarning", "OpError", "Tensor", "UnknownNodeError", "__version__", "abs", "apply",
           "binary_cross_entropy", "dropout", "exp", "gradcheck", "l2_penalty", "linear", "log",
           "log_softmax", "maximum", "mean", "relu", "reshape", "sigmoid", "softmax",
           "softmax_cross_entropy", "sqrt", "square", "sum", "tanh", "transpose"]
