"""Save a graph as JSON that loads back exactly, or as GraphML for other tools.

The JSON file is networkx's node-link layout (``networkx.node_link_graph(data)`` reads it)
plus ``format``, ``version`` and ``grad_root``::

    {"directed": true, "multigraph": false, "format": "bpgraph-graph", "version": 1,
     "graph": {meta: root, m, lambd, ...},  "grad_root": "J" or null,
     "nodes": [{"id", "name", "kind", "op", "operands", "params", "scope", "shape", "dtype",
                "requires_grad", "value", "grad"}, ...],
     "edges": [{"source": id, "target": id}, ...]}

Nodes come in id order, one per line, keys sorted, so a graph always gives the same bytes.
``operands`` keeps repeats (``x * x`` has ``[x, x]``); ``edges`` holds each pair once.  Params are
numbers, booleans, null, strings or flat lists (read back as tuples).  Arrays are nested lists with
NaN and infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON); ``grad`` is
there only with ``grads=True``.

Loading never runs code: it checks every field (an error names the node and field), records the
leaves with their stored values and recomputes every op, comparing it with its stored value.
Stored gradients are checked, not restored.  :mod:`bpgraph.io.limits` holds the limits, which a
caller may raise for files it trusts.  GraphML is for other tools, not for loading back.

Modules: ``schema`` (what a file is, the error, shared checks), ``limits``, ``write``, ``read``.
"""

from . import limits
from .read import from_dict, load_json
from .schema import DTYPES, EXTENSIONS, FORMAT, NONFINITE, VERSION, GraphFileError
from .write import save_graphml, save_json, to_dict

__all__ = ["DTYPES", "EXTENSIONS", "FORMAT", "NONFINITE", "VERSION", "GraphFileError", "from_dict", "limits",
           "load_json", "save_graphml", "save_json", "to_dict"]
