"""Pure queries on a recorded graph: which gradient flows where, and why.

Every query takes the graph first and accepts nodes as names, Tensors or ids.  Reports are
frozen dataclasses with ``to_dict()`` (JSON-ready) and a ``__str__`` giving a text table.
"""

import types

from ..autodiff import edge_vjp, gradients, seed_for
from ..errors import BpgraphError, GraphError, UnknownNodeError
from ..graph import KINDS, Ref
from ..ops import OPS
from ..tensor import Tensor
from ..text import one_line, tex_text
from .compare import (EXTRA_TERM, MISSING_TERM, NOT_GIVEN, OK, SCALED, TRANSPOSED, UNRECOGNISED, WRONG,
                      WRONG_SHAPE, Diagnosis, EntryPoint, GradCheckRow, GradComparison, compare_grads)
from .diff import DiffRow, GradDiff, diff_grads
from .explain import (TEX_FACTORS_PER_LINE, PathContribution, PathReport, Step, backward_steps, explain,
                      path_attribution)
from .paths import (ClaimError, Pattern, PathsReport, assert_no_path, assert_path, count_paths, depends,
                    descendants, find_path, no_path_reason, paths, paths_report, select, through)
from .terms import (NO_PATH, NONZERO, OTHER, ZERO, TermCell, TermReach, TermReport, TermRow, cost_terms,
                    term_attribution, term_edges, term_reach)

#: Every public name imported above (not the submodules).
__all__ = sorted(name for name, value in list(globals().items())
                 if not name.startswith("_") and not isinstance(value, types.ModuleType))
