"""The main job: answer the seed question on the built-in network, checked on the graph.

``bpgraph demo`` prints :func:`seed_answer` (and draws the network); it works in a notebook too.
"""

from __future__ import annotations

import numpy as np

from . import analysis
from .examples import l2_mlp


def seed_answer(lambd: float = 0.7) -> str:
    """Why L2 changes only dW1..dW3, and what ∂L2/∂A2 is: checked on the graph, not asserted."""
    g, plain = l2_mlp(lambd=lambd), l2_mlp(lambd=0.0)
    m = g.meta["m"]
    terms = analysis.term_attribution(g, "J")
    reached = sorted((row.name for row in terms.rows
                      if any(c.term == "L2" and c.status != "no path" for c in row.cells)), key=g.id_of)
    diff = analysis.diff_grads(g, plain, "J", labels=(f"λ={lambd:g}", "λ=0"))
    changed = [row for row in diff.rows if row.status == "changed"]
    unchanged = [row.name for row in diff.rows if row.status == "unchanged" and row.name[0] in "AZbW"]
    deviation = max((float(np.max(np.abs(row.delta - lambd / m * g[row.name].value))) for row in changed),
                    default=0.0)
    no_path_from = [n for n in g.names if n[0] in "AZ" and not analysis.depends(g, "L2", n)]
    change = (f"{', '.join('d' + row.name for row in changed)}, each by exactly λ/m·W (largest deviation "
              f"{deviation:.1e})" if changed else "nothing (with λ = 0, L2 adds λ/m·W = 0 to each dW)")
    return f"""\
The seed network: J = cross_entropy + L2, L2 = λ/(2m)·(‖W1‖² + ‖W2‖² + ‖W3‖²), λ = {lambd:g}, m = {m}.

1. Which gradients does each cost term reach?
{terms}

   L2 reaches only: {', '.join(reached)}.
   No path from {', '.join(no_path_from)} to L2 (checked on the graph).

2. What is ∂L2/∂A2?
   {analysis.explain(g, 'L2', 'A2')}

3. What changes when λ goes from 0 to {lambd:g} (same parameters)?
   changed:   {change}
   unchanged: {', '.join('d' + name for name in unchanged)}

So the chain rule through dA brings in no L2 term: ∂L2/∂A = 0 for every A, because L2's only
paths are W_l -> L2 -> J. Adding L2 adds λ/m·W_l to dW_l and nothing anywhere else."""
