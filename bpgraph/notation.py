"""Gradient formulas as data: shown in the course's notation and evaluated with numpy, so a test
checks that what a learner reads is what the engine runs.  The language: numbers, names (``g``,
``out``, operand slots, params), ``- + * / @ **``, comparisons inside ``ind``, ``seq[i]`` and calls of
:data:`HELPERS`; ``*`` shows as ``·`` beside a scalar, else ``⊙`` (spaced when a side holds ``g``).
"""

from __future__ import annotations

import ast
import functools
import math
from typing import Any, Callable, Mapping

import numpy as np

STYLES = ("text", "markdown", "latex")


# The numpy helpers formulas call; the op table computes with the same ones.
def broadcast(x: np.ndarray, like: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """A reduction's gradient ``x`` given the shape of ``like``, its input, again."""
    return np.broadcast_to(x if axis is None or keepdims else np.expand_dims(x, axis), like.shape)


def count(like: np.ndarray, axis: Any) -> int:
    """How many elements a reduction of ``like`` over ``axis`` takes together."""
    return like.size if axis is None else math.prod(like.shape[a] for a in np.atleast_1d(axis))


def examples(x: np.ndarray, axis: int | None = None) -> int:
    """The number of examples m: the entries per class along ``axis``, else the columns."""
    if axis is not None:
        return x.size // max(x.shape[axis], 1)
    return x.shape[-1] if x.ndim else 1


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log(softmax(x)) along ``axis``, shifted by the maximum so that it cannot overflow."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


#: name -> (numpy meaning, kind, text form, LaTeX form).  Kinds: ``call`` f(x), ``post`` xᵀ,
#: ``sum`` Σ_sub x, ``root`` √x, ``ind`` 1[cond], ``symbol`` (a number such as m, no argument).
HELPERS: dict[str, tuple[Callable[..., Any], str, str, str]] = {
    "T": (lambda x: np.swapaxes(x, -1, -2), "post", "ᵀ", r"^\top"),
    "untranspose": (lambda x, axes: np.transpose(x, None if axes is None else np.argsort(axes)),
                    "post", "ᵀ", r"^\top"),
    "ind": (lambda cond: np.asarray(cond, dtype=float), "ind", "1", r"\mathbf{1}"),
    "sum_cols": (lambda x: np.sum(x, axis=-1, keepdims=True), "sum", "cols", "cols"),
    "sum_along": (lambda x, axis: np.sum(x, axis=axis, keepdims=True), "sum", "axis", "axis"),
    "sqrt": (np.sqrt, "root", "√", r"\sqrt"),
    "exp": (np.exp, "call", "exp", r"\exp"),
    "log": (np.log, "call", "log", r"\log"),
    "sign": (np.sign, "call", "sign", r"\operatorname{sign}"),
    "softmax": (lambda x, axis: np.exp(log_softmax(x, axis)), "call", "softmax", r"\operatorname{softmax}"),
    "log_softmax": (log_softmax, "call", "log softmax", r"\log\operatorname{softmax}"),
    "broadcast": (broadcast, "call", "broadcast", r"\operatorname{broadcast}"),
    "reshape": (lambda x, like: np.reshape(x, like.shape), "call", "reshape", r"\operatorname{reshape}"),
    "examples": (examples, "symbol", "m", "m"),
    "count": (count, "symbol", "n", "n"),
}
#: How parameters are written (others as their own name).
SYMBOLS = {"lambd": ("λ", r"\lambda"), "m": ("m", "m"), "exponent": ("p", "p"),
           "keep_prob": ("keep_prob", r"\text{keep\_prob}")}
_AXES = {0: "rows", -2: "rows", 1: "cols", -1: "cols"}  # the course's matrices: one example a column
_BINOPS = {ast.Add: ("+", "+"), ast.Sub: ("−", "-"), ast.Div: ("/", "/"), ast.MatMult: ("·", r"\cdot")}
_COMPARE = {ast.Gt: (">", ">"), ast.GtE: ("≥", r"\geq"), ast.Lt: ("<", "<")}
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.Compare, ast.Call, ast.Name,
            ast.Constant, ast.Subscript, ast.Load, ast.Pow, ast.Mult, *_BINOPS, *_COMPARE)
COMPARE, SUM, PRODUCT, POWER, ATOM = range(5)  # binding strength, weakest first
_SUPERSCRIPT = {2: "²", 3: "³"}


@functools.lru_cache(maxsize=None)
def parse(expr: str) -> ast.expr:
    """The syntax tree of a formula, checked to use only the formula language (cached).

    >>> parse("a.T")
    Traceback (most recent call last):
    ValueError: formula 'a.T': Attribute is not part of the formula language
    """
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if (not isinstance(node, _ALLOWED) or isinstance(node, ast.Compare) and len(node.ops) > 1
                or isinstance(node, ast.Constant) and not isinstance(node.value, (int, float))):
            raise ValueError(f"formula {expr!r}: {type(node).__name__} is not part of the formula language")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.func.id not in HELPERS
                                           or node.keywords):
            raise ValueError(f"formula {expr!r}: only the helpers {', '.join(HELPERS)} can be called")
    return tree.body


_NAMESPACE = {"__builtins__": {}, **{name: helper[0] for name, helper in HELPERS.items()}}


@functools.lru_cache(maxsize=None)
def _code(expr: str) -> Any:
    return compile(ast.Expression(parse(expr)), f"<formula {expr}>", "eval")


def evaluate(expr: str, env: Mapping[str, Any]) -> np.ndarray:
    """The formula's value with numpy, ``env`` naming ``g``, ``out``, the operands and params.

    >>> evaluate("g * ind(a > 0)", {"g": np.ones(3), "a": np.array([-1.0, 0.0, 2.0])})
    array([0., 0., 1.])
    """
    return np.asarray(eval(_code(expr), _NAMESPACE, dict(env)))


def _namer(style: str) -> Callable[[str], str]:
    from .text import markdown_text, one_line, tex_text  # escaping brings in graphviz: load it to show

    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    return {"text": one_line, "markdown": markdown_text, "latex": tex_text}[style]


def gradient(of: str, wrt: str, style: str = "text", name: str | None = None) -> str:
    r"""How ∂of/∂wrt is written in ``style``, or the given ``name`` for it (the course's ``dZ3``).

    >>> print(gradient("J", "Z3"), gradient("J", "Z3", "latex"))
    ∂J/∂Z3 \frac{\partial \text{J}}{\partial \text{Z3}}
    """
    show = _namer(style)
    if name is not None:
        return show(name)
    if style == "latex":
        return rf"\frac{{\partial {show(of)}}}{{\partial {show(wrt)}}}"
    return f"∂{show(of)}/∂{show(wrt)}"


def render(expr: str, names: Mapping[str, str], style: str = "text", *, root: str = "J",
           upstream: str | None = None, params: Mapping[str, Any] | None = None,
           scalar_out: bool = False) -> str:
    """The formula in ``style``, ``names`` mapping ``out`` and the slots to node names; ``g`` shows as
    ∂root/∂out, as ``upstream``, or as 1 when the root is ``out``; ``scalar_out``: a cost.

    >>> render("T(w) @ g", {"w": "W3", "a": "A2", "b": "b3", "out": "Z3"})
    'W3ᵀ·∂J/∂Z3'
    """
    tree = parse(expr)
    if upstream is None and root == names["out"]:
        tree = _Unit().visit(ast.parse(expr, mode="eval")).body  # a fresh tree: parse() caches its own
    tex = style == "latex"
    g = gradient(root, names["out"], "latex" if tex else "text", upstream)
    text = _Renderer(tex, names, g, upstream is None, params or {}, scalar_out).show(tree, True)
    return _namer("markdown")(text) if style == "markdown" else text


def _is(node: ast.expr, name_or_value: Any) -> bool:
    return (isinstance(node, ast.Name) and node.id == name_or_value
            or isinstance(node, ast.Constant) and node.value == name_or_value)


class _Unit(ast.NodeTransformer):
    """Sets g = 1 (the root is the op's own result) and drops the factors of 1 that leaves."""

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return ast.Constant(1) if node.id == "g" else node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        left, right, op = node.left, node.right, type(node.op)
        if op in (ast.Mult, ast.MatMult) and (_is(left, 1) or _is(right, 1)):
            return right if _is(left, 1) else left
        if op is ast.Mult and isinstance(left, ast.UnaryOp) and _is(left.operand, 1):
            return ast.UnaryOp(ast.USub(), right)
        return left if op is ast.Div and _is(right, 1) else node


def _prec(node: ast.expr) -> int:
    if isinstance(node, ast.BinOp):
        return {ast.Pow: POWER, ast.Add: SUM, ast.Sub: SUM}.get(type(node.op), PRODUCT)
    return {ast.UnaryOp: PRODUCT, ast.Compare: COMPARE}.get(type(node), ATOM)


class _Renderer:
    def __init__(self, tex: bool, names: Mapping[str, str], g: str, g_is_fraction: bool,
                 params: Mapping[str, Any], scalar_out: bool) -> None:
        self.tex, self.names, self.g, self.g_is_fraction, self.params = tex, names, g, g_is_fraction, params
        self.scalars = {"g", "out"} if scalar_out else set()
        self.name = _namer("latex" if tex else "text")

    def pick(self, pair: tuple[str, str]) -> str:
        return pair[1] if self.tex else pair[0]

    def scalar(self, node: ast.expr) -> bool:
        """Numbers, params, ``m``/``n``, and ``g``/``out`` of a scalar result: shown with ``·``."""
        if isinstance(node, ast.Name):
            return node.id in self.scalars or node.id not in self.names and node.id != "g"
        if isinstance(node, ast.Call):
            return HELPERS[node.func.id][1] == "symbol"
        return isinstance(node, ast.Constant) or isinstance(node, (ast.BinOp, ast.UnaryOp)) and all(
            self.scalar(n) for n in ast.iter_child_nodes(node) if isinstance(n, ast.expr))

    def wrap(self, node: ast.expr, tail: bool, paren: bool) -> str:
        """``node`` shown, in parentheses when ``paren``; ``tail``: nothing follows it."""
        inner = self.show(node, tail or paren)
        return (r"\left(" + inner + r"\right)" if self.tex else f"({inner})") if paren else inner

    def atom(self, node: ast.expr) -> str:
        """``node`` as the base of a power or a transpose (∂J/∂Z is then parenthesised too)."""
        return self.wrap(node, False, _prec(node) < ATOM or self.g_is_fraction and _is(node, "g"))

    def show(self, node: ast.expr, tail: bool) -> str:
        if isinstance(node, ast.Name):
            if node.id == "g":
                return self.g
            if node.id in self.names:
                return self.name(self.names[node.id])
            return self.pick(SYMBOLS.get(node.id, (node.id, self.name(node.id))))
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.Subscript):  # weights[i]: the operand at this position
            return self.show(node.value, tail)
        if isinstance(node, ast.UnaryOp):
            return ("-" if self.tex else "−") + self.wrap(node.operand, tail, _prec(node.operand) < PRODUCT)
        if isinstance(node, ast.Compare):
            return " ".join([self.show(node.left, False), self.pick(_COMPARE[type(node.ops[0])]),
                             self.show(node.comparators[0], tail)])
        if isinstance(node, ast.Call):
            return self.call(node, tail)
        return self.binop(node, tail)

    def binop(self, node: ast.BinOp, tail: bool) -> str:
        left, right, op = node.left, node.right, type(node.op)
        if op is ast.Pow:
            if not self.tex and isinstance(right, ast.Constant) and right.value in _SUPERSCRIPT:
                return self.atom(left) + _SUPERSCRIPT[right.value]
            return self.atom(left) + (f"^{{{self.show(right, True)}}}" if self.tex
                                      else "^" + self.atom(right))
        scaled = self.scalar(left) or self.scalar(right)
        symbol = _BINOPS.get(op) or (("·", r"\cdot") if scaled else ("⊙", r"\odot"))
        mine = _prec(node)

        def mixed(side: ast.expr) -> bool:  # a matrix product beside ⊙ or /: parentheses
            return (isinstance(side, ast.BinOp) and mine == PRODUCT
                    and (op is ast.MatMult) != isinstance(side.op, ast.MatMult))

        left_paren = _prec(left) < mine or mixed(left)
        right_paren = _prec(right) < mine or _prec(right) == mine and (
            op in (ast.Sub, ast.Div) or mixed(right) or isinstance(right, ast.UnaryOp))
        holds_g = any(_is(n, "g") for n in ast.walk(node))
        joiner = f" {self.pick(symbol)} " if self.tex or symbol[0] in "⊙+−" and holds_g else symbol[0]
        return self.wrap(left, False, left_paren) + joiner + self.wrap(right, tail, right_paren)

    def call(self, node: ast.Call, tail: bool) -> str:
        kind, form = HELPERS[node.func.id][1], self.pick(HELPERS[node.func.id][2:])
        arg = node.args[0] if node.args else node
        if kind == "symbol":
            return form
        if kind == "post":
            return self.atom(arg) + form
        if kind == "root":
            return rf"\sqrt{{{self.show(arg, True)}}}" if self.tex else form + self.atom(arg)
        if kind in ("ind", "call"):
            return f"{form}[{self.show(arg, True)}]" if kind == "ind" else form + self.wrap(arg, True, True)
        if node.func.id == "sum_along":  # Σ over the axis the params give
            axis = self.params.get("axis", "axis")
            form = _AXES.get(axis, f"axis {axis}") if isinstance(axis, int) else str(axis)
        paren = _prec(arg) < ATOM
        body = (r"\sum_{\text{" + form + "}}" if self.tex else "Σ_" + form) + ("" if paren else " ")
        body += self.wrap(arg, tail, paren)
        return body if tail else (r"\left(" + body + r"\right)" if self.tex else f"({body})")
