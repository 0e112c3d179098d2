"""A calculator the model can trust with arithmetic, built on `ast` and never on eval.

The expression is parsed with `ast.parse(mode="eval")` and walked against an allow-list:
numbers, + - * / // % **, unary signs, parentheses, a few math functions and pi and e.
Everything is bounded so a hostile or careless expression cannot hang the worker or eat
memory: the text is short, nesting is shallow, integers stay below 10**1000 (a power is
refused before it is computed when its size can be told in advance) and floats must
stay finite.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from .base import Tool, ToolContext, ToolError

__all__ = ["CALCULATE", "CalculationError", "evaluate"]

Number = int | float

MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_DIGITS = 1000
_LIMIT = 10**MAX_DIGITS
_LIMIT_BITS = _LIMIT.bit_length()
# Without quotes there are no string literals, so no escapes and no parser warnings.
_ALLOWED_CHARACTERS = re.compile(r"[0-9A-Za-z_.,+\-*/%()\s]*")
# Signs people and models type that Python spells differently: multiplication sign,
# division sign and minus sign.
_SPELLINGS = str.maketrans({"\u00d7": "*", "\u00f7": "/", "\u2212": "-"})


class CalculationError(ToolError):
    """The expression cannot be calculated; the message says why, for the model."""


def evaluate(expression: str) -> Number:
    """Return the value of an arithmetic expression, or raise CalculationError."""
    if not isinstance(expression, str):
        raise CalculationError("the expression must be text")
    text = expression.translate(_SPELLINGS).strip()
    if not text:
        raise CalculationError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise CalculationError(f"the expression is longer than {MAX_LENGTH} characters")
    if "^" in text:
        raise CalculationError("^ is not supported; write powers with **")
    if not _ALLOWED_CHARACTERS.fullmatch(text):
        bad = next(c for c in text if not _ALLOWED_CHARACTERS.fullmatch(c))
        raise CalculationError(f"the character {bad!r} is not allowed")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculationError("this is not an arithmetic expression") from None
    return _evaluate(tree.body, 0)


def _evaluate(node: ast.AST, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise CalculationError("the expression is nested too deeply")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Name):
        raise CalculationError(f"unknown name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_evaluate(node.operand, depth + 1)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _evaluate(node.left, depth + 1)
        right = _evaluate(node.right, depth + 1)
        return _apply(_BINARY[type(node.op)], left, right)
    if isinstance(node, ast.Call):
        return _call(node, depth)
    raise CalculationError(f"{_describe(node)} is not allowed in arithmetic")


def _call(node: ast.Call, depth: int) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise CalculationError(f"{_describe(node.func)} is not a function the calculator knows")
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise CalculationError("functions take plain arguments only")
    name = node.func.id
    function, fewest, most = _FUNCTIONS[name]
    if not fewest <= len(node.args) <= (most if most is not None else len(node.args)):
        raise CalculationError(f"{name}() got {len(node.args)} arguments")
    arguments = [_evaluate(arg, depth + 1) for arg in node.args]
    return _apply(function, *arguments, name=name)


def _apply(function: Callable[..., Any], *arguments: Number, name: str = "") -> Number:
    try:
        return _checked(function(*arguments))
    except ZeroDivisionError:
        raise CalculationError("division by zero") from None
    except OverflowError:
        raise CalculationError("the result is too large") from None
    except (ValueError, TypeError):
        raise CalculationError(f"{name or 'the operation'} is undefined for these values") from None


def _checked(value: Any) -> Number:
    if isinstance(value, complex):
        raise CalculationError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculationError("the result is too large")
    if isinstance(value, int) and abs(value) >= _LIMIT:
        raise CalculationError(f"the result has more than {MAX_DIGITS} digits")
    return value


def _power(base: Number, exponent: Number) -> Number:
    # An integer power is exact and can be astronomically large, so refuse it from the
    # sizes alone before Python spends minutes and gigabytes building it.
    exact = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if exact and (abs(base).bit_length() - 1) * exponent > _LIMIT_BITS:
        raise CalculationError(f"the result has more than {MAX_DIGITS} digits")
    return base**exponent


def _round(value: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(value)
    # round(12, -10**9) would build 10**(10**9) first, so the digits are bounded.
    if not isinstance(digits, int) or abs(digits) > 100:
        raise CalculationError("round() takes a whole number of digits between -100 and 100")
    return round(value, digits)


def _log(value: Number, base: Number = math.e) -> float:
    if base == 1:
        raise CalculationError("log() with base 1 is undefined")
    return math.log(value, base)


_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
# name: (function, fewest arguments, most arguments or None for any number)
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int | None]] = {
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (min, 1, None),
    "max": (max, 1, None),
    "log": (_log, 1, 2),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.BinOp | ast.UnaryOp | ast.BoolOp | ast.Compare):
        return "this operator"
    return {"Attribute": "attribute access", "Tuple": "a list of values (a stray comma?)"}.get(
        type(node).__name__, type(node).__name__
    )


def calculate(arguments: dict[str, Any], context: ToolContext) -> str:
    """Return the value of `arguments["expression"]` as JSON for the model."""
    expression = arguments["expression"]
    return json.dumps({"expression": expression.strip(), "result": evaluate(expression)})


CALCULATE = Tool(
    name="calculate",
    description=(
        "Evaluate an arithmetic expression exactly, instead of doing the arithmetic yourself. "
        "Supports numbers, + - * / // % ** (powers), parentheses, sqrt, abs, round, min, "
        "max, log (natural, or log(x, base)), sin, cos, tan (radians), pi and e."
    ),
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "The expression, e.g. (17.5 * 3 - 2) / 4 or sqrt(2) ** 3.",
            }
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
    run=calculate,
    timeout=2.0,
)
