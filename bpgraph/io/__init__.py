"""Save a graph as JSON that loads back exactly, or as GraphML for other tools.

The JSON file is networkx's node-link layout (``networkx.node_link_graph(data)`` reads it)
plus ``format``, ``version`` and ``grad_root``::

    {"directed": true, "multigraph": false, "format": "bpgraph-graph", "version": 1,
     "graph": {meta: root, m, lambd, ...},  "grad_root": "J" or null,
     "nodes": [{"id", "name", "kind", "op", "operands", "params", "scope", "shape", "dtype",
                "requires_grad", "value", "grad"}, ...],
     "edges": [{"source": id, "target": id}, ...]}

Nodes come in id order, one per line, keys sorted, so a graph always gives the same bytes.
``operands`` keeps repeats (``x * x`` has ``[x, x]``); ``edges`` holds each pair once.  Params
are numbers, booleans, null, strings or flat lists (read back as tuples).  Arrays are nested
lists with NaN and infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON);
``grad`` is there only with ``grads=True``.

Loading never runs code: it checks every field, naming the node and field of the first
problem, and replays the file: leaves are recorded with their stored values and every op (from
:data:`bpgraph.ops.OPS`) is recomputed and compared with its stored value.  Stored gradients
are checked, not restored (call :meth:`Graph.backward`).  The limits in :mod:`bpgraph.io.limits`
are module constants that a caller may raise for files it trusts
(``bpgraph.io.limits.MAX_NODES = 10**6``).

GraphML (:func:`save_graphml`) is for other tools, not for loading back.

The modules: ``schema`` (what a file is, the error, shared checks), ``limits``, ``arrays``
(arrays to JSON and back), ``write``, ``read`` (checks) and ``replay`` (recording the nodes).
"""

from ..errors import BpgraphError
from ..files import atomic_write
from ..graph import KINDS, Graph
from ..ops import OPS, all_finite
from ..tensor import Tensor
from ..text import xml_text
from . import limits
from .read import from_dict, load_json
from .schema import DTYPES, EXTENSIONS, FORMAT, NONFINITE, VERSION, GraphFileError
from .write import save_graphml, save_json, to_dict

__all__ = [
    "DTYPES", "limits", "EXTENSIONS", "FORMAT", "KINDS", "NONFINITE", "OPS", "VERSION", "BpgraphError", "Graph", "GraphFileError",
    "Tensor", "all_finite", "atomic_write", "from_dict", "load_json", "save_graphml", "save_json", "to_dict",
    "xml_text",
]
