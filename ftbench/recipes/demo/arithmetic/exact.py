"""Exact arithmetic on the calculator annotations of GSM8K answers (``4*3 = <<4*3=12>>12``): every number in a
generated reasoning is computed here with fractions, never typed in."""

from __future__ import annotations

import ast
import operator
from fractions import Fraction
from typing import Callable

_BINOPS: dict[type, Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def evaluate_expression(expr: str) -> Fraction:
    """Evaluate ``+ - * /`` and parentheses over integer literals, exactly. Anything else is refused."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"not a plain arithmetic expression: {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def calc(expr: str) -> tuple[str, int]:
    """``"4*3"`` -> (``"4*3 = <<4*3=12>>12"``, 12). The result must be a non-negative whole number."""
    value = evaluate_expression(expr)
    if value.denominator != 1 or value < 0:
        raise ArithmeticError(f"{expr} = {value} is not a non-negative integer")  # a template bug
    n = int(value)
    return f"{expr} = <<{expr}={n}>>{n}", n
