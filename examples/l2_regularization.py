"""Why does L2 regularisation change only dW1, dW2, dW3?  Shown in plain numbers.

Builds the course's 3-layer network with bpgraph's public API, twice: once with λ = 0.7 and
once with λ = 0, at the same parameter values, and prints how every gradient changed.

    python examples/l2_regularization.py
"""

import numpy as np

import bpgraph as bp
from bpgraph.examples import init_params, two_class_data


def build(lambd: float = 0.7, m: int = 211) -> bp.Graph:
    """LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID, J = cross_entropy + L2."""
    x, y = two_class_data(m)
    p = init_params((2, 20, 3, 1))
    g = bp.Graph()
    X, Y = g.input(x, name="X"), g.input(y, name="Y")
    W1, b1 = g.param(p["W1"], name="W1"), g.param(p["b1"], name="b1")
    W2, b2 = g.param(p["W2"], name="W2"), g.param(p["b2"], name="b2")
    W3, b3 = g.param(p["W3"], name="W3"), g.param(p["b3"], name="b3")
    A1 = bp.relu((W1 @ X + b1).named("Z1")).named("A1")
    A2 = bp.relu((W2 @ A1 + b2).named("Z2")).named("A2")
    A3 = bp.sigmoid((W3 @ A2 + b3).named("Z3")).named("A3")
    ce = bp.binary_cross_entropy(A3, Y).named("cross_entropy")
    l2 = bp.l2_penalty([W1, W2, W3], lambd=lambd, m=m).named("L2")
    (ce + l2).named("J")
    return g


def main() -> None:
    with_l2, without_l2 = build(0.7), build(0.0)
    grads, plain = with_l2.backward("J"), without_l2.backward("J")
    m = 211
    print("gradient    shape      ‖with L2 − without L2‖   what L2 added")
    for name in ["A3", "Z3", "W3", "b3", "A2", "Z2", "W2", "b2", "A1", "Z1", "W1", "b1"]:
        change = grads[name] - plain[name]
        if name.startswith("W"):
            expected = 0.7 / m * with_l2[name].value
            note = f"λ/m·{name} (max deviation {np.max(np.abs(change - expected)):.1e})"
        else:
            note = "nothing" if not change.any() else "SOMETHING (unexpected)"
        print(f"d{name:<10} {str(grads[name].shape):<10} {np.linalg.norm(change):>22.3e}   {note}")
    print()
    print("The L2 node reads only:", ", ".join(t.name for t in with_l2.operands("L2")))
    upstream = {with_l2.name_of(i) for i in with_l2.ancestors("L2")}
    print("Nodes L2 depends on:", ", ".join(sorted(upstream)))
    print("So no path runs from L2 back through any A or Z, and ∂L2/∂A2 = 0.")


if __name__ == "__main__":
    main()
