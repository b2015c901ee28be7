"""Whether a cloud function's code returns a value: the Python reading of JavaScript's ``undefined``.

Parse Server answers a function that returns nothing (``undefined``) with ``{}`` and one that
returns ``null`` with ``{"result": null}``; the JS SDK's ``Parse.Cloud.run`` resolves to
``undefined`` and ``null``. Python gives ``None`` in both cases, so the difference is read from the
function's source once, when the cloud code is loaded: a function with no ``return <value>``
statement of its own (only bare ``return`` or none) returns nothing, and any ``return <value>``,
``return None`` included, makes it a function with a result. Reading the source, rather than asking
authors for a sentinel value, keeps the plain Python spelling meaning what it says; the bytecode
cannot tell ``return None`` from falling off the end, the syntax tree can.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
# Nodes whose ``return`` statements belong to another function.
_OWN_SCOPE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def returns_value(fn: Callable[..., Any]) -> bool:
    """False when ``fn``'s own body has no ``return <value>``: calling it answers without a result.

    True whenever that cannot be read (a builtin, a callable object, code without source such as a
    function made by ``exec``), so such functions keep answering ``{"result": …}``. Lambdas are
    expressions and always return their value.
    """
    target = inspect.unwrap(fn)  # through functools.wraps decorators, to the function written
    if not inspect.isfunction(target) or target.__name__ == "<lambda>":
        return True
    try:
        source = textwrap.dedent(inspect.getsource(target))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return True
    node = next((n for n in tree.body if isinstance(n, _FUNCTION_NODES)), None)
    if node is None or node.name != target.__name__:
        return True
    return any(ret.value is not None for ret in _own_returns(node))


def _own_returns(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Return]:
    """The function's return statements, not those of functions or classes defined inside it."""
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Return):
            yield node
        elif not isinstance(node, _OWN_SCOPE):
            pending.extend(ast.iter_child_nodes(node))
