"""Save a graph as JSON that loads back exactly (the README shows the format), or as GraphML.

Loading never runs code: it checks every field within :mod:`bpgraph.io.limits` and recomputes every op.
"""

from . import limits
from .read import from_dict, load_json
from .schema import DTYPES, EXTENSIONS, FORMAT, NONFINITE, VERSION, GraphFileError
from .write import save_graphml, save_json, to_dict

__all__ = ["DTYPES", "EXTENSIONS", "FORMAT", "NONFINITE", "VERSION", "GraphFileError", "from_dict", "limits",
           "load_json", "save_graphml", "save_json", "to_dict"]
