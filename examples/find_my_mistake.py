"""A learner's hand-written backward pass, checked node by node against the graph.

The learner regularised the course's 3-layer network with L2 and, thinking "L2 is part of
J, so it must show up in dA2 too", added λ/m·W3ᵀ·... to dA2.  Everything below A2 then went
wrong as well.  bpgraph compares every gradient and names the node where the error *enters*
(A2), listing the rest as its symptoms.

    python examples/find_my_mistake.py
    python examples/find_my_mistake.py --save my_grads.npz    # also write them for `bpgraph compare`
"""

import argparse

import numpy as np

from bpgraph.analysis import compare_grads
from bpgraph.examples import l2_mlp


def relu_grad(z: np.ndarray) -> np.ndarray:
    return (z > 0).astype(float)


def learners_backward(g, lambd: float, m: int, mistake: bool) -> dict[str, np.ndarray]:
    """The course's backward_propagation_with_regularization, written out by hand."""
    v = {name: g[name].value for name in g.names}
    d = {}
    d["dZ3"] = v["A3"] - v["Y"]
    d["dW3"] = d["dZ3"] @ v["A2"].T / m + lambd / m * v["W3"]
    d["db3"] = d["dZ3"].sum(axis=1, keepdims=True) / m
    d["dA2"] = v["W3"].T @ d["dZ3"]
    if mistake:  # the wrong idea: "L2 reaches A2 as well"
        d["dA2"] = d["dA2"] + lambd / m * v["W3"].T @ np.ones_like(v["A3"])
    d["dZ2"] = d["dA2"] * relu_grad(v["Z2"])
    d["dW2"] = d["dZ2"] @ v["A1"].T / m + lambd / m * v["W2"]
    d["db2"] = d["dZ2"].sum(axis=1, keepdims=True) / m
    d["dA1"] = v["W2"].T @ d["dZ2"]
    d["dZ1"] = d["dA1"] * relu_grad(v["Z1"])
    d["dW1"] = d["dZ1"] @ v["X"].T / m + lambd / m * v["W1"]
    d["db1"] = d["dZ1"].sum(axis=1, keepdims=True) / m
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", metavar="FILE.npz",
                        help="write the gradients with the dA2 mistake, for `bpgraph compare l2-mlp --grads`")
    args = parser.parse_args()
    lambd, m = 0.7, 211
    g = l2_mlp(lambd=lambd, m=m)
    if args.save:
        np.savez(args.save, **learners_backward(g, lambd, m, mistake=True))
        print(f"wrote {args.save}: the hand-written gradients with the dA2 mistake")
        return
    for mistake in (False, True):
        report = compare_grads(g, "J", learners_backward(g, lambd, m, mistake))
        print("with the dA2 mistake:" if mistake else "a correct hand-written backward pass:")
        print(report)
        print("error enters at:", ", ".join(report.first_wrong) or "nowhere (all gradients agree)")
        print()


if __name__ == "__main__":
    main()
