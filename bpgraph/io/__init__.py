"""Save a graph as JSON that loads back exactly, or as GraphML for other tools.

The JSON file is networkx's node-link layout plus ``format``, ``version`` and ``grad_root`` (the
README shows it): nodes in id order, one per line, keys sorted, so a graph always gives the same
bytes; ``operands`` keeps repeats, ``edges`` each pair once; arrays are nested lists with NaN and
infinities as ``"nan"``, ``"inf"``, ``"-inf"``.  Loading never runs code: it checks every field,
records the leaves and recomputes every op, which must give its stored value, within the limits of
:mod:`bpgraph.io.limits`.  Modules: ``schema``, ``limits``, ``write``, ``read``.
"""

from . import limits
from .read import from_dict, load_json
from .schema import DTYPES, EXTENSIONS, FORMAT, NONFINITE, VERSION, GraphFileError
from .write import save_graphml, save_json, to_dict

__all__ = ["DTYPES", "EXTENSIONS", "FORMAT", "NONFINITE", "VERSION", "GraphFileError", "from_dict", "limits",
           "load_json", "save_graphml", "save_json", "to_dict"]
