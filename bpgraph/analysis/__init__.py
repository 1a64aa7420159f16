"""Pure queries on a recorded graph: which gradient flows where, and why.

Every query takes the graph first and accepts nodes as names, Tensors or ids.  Reports are
frozen dataclasses with ``to_dict()`` (JSON-ready) and a ``__str__`` giving a text table.
"""

from ..autodiff import edge_vjp, gradients, seed_for
from ..errors import BpgraphError, GraphError, UnknownNodeError
from ..graph import KINDS, Ref
from ..ops import OPS
from ..tensor import Tensor
from ..text import one_line, tex_text
from .compare import (NOT_GIVEN, OK, WRONG, WRONG_SHAPE, DiffRow, EntryPoint, GradCheckRow, GradComparison,
                      GradDiff, compare_grads, diff_grads)
from .explain import TEX_FACTORS_PER_LINE, PathContribution, PathReport, explain, path_attribution
from .paths import (ClaimError, Pattern, PathsReport, assert_no_path, assert_path, count_paths, depends,
                    descendants, find_path, no_path_reason, paths, paths_report, select, through)
from .terms import (NO_PATH, NONZERO, OTHER, ZERO, TermCell, TermReach, TermReport, TermRow, cost_terms,
                    term_attribution, term_edges, term_reach)

__all__ = [
    "KINDS", "NONZERO", "NOT_GIVEN", "NO_PATH", "OK", "OPS", "OTHER", "TEX_FACTORS_PER_LINE", "WRONG",
    "WRONG_SHAPE", "ZERO", "BpgraphError", "ClaimError", "DiffRow", "EntryPoint", "GradCheckRow",
    "GradComparison", "GradDiff", "GraphError", "PathContribution", "PathReport", "PathsReport", "Pattern",
    "Ref", "Tensor", "TermCell", "TermReach", "TermReport", "TermRow", "UnknownNodeError", "assert_no_path",
    "assert_path", "compare_grads", "cost_terms", "count_paths", "depends", "descendants", "diff_grads",
    "edge_vjp", "explain", "find_path", "gradients", "no_path_reason", "one_line", "path_attribution",
    "paths", "paths_report", "seed_for", "select", "term_attribution", "term_edges", "term_reach", "tex_text",
    "through",
]
