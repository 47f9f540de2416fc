"""Automatic mutants: small changes to the solution regions that a good test suite notices.

Each operator changes one node of a solution cell's syntax tree (between `### BEGIN SOLUTION` and
`### END SOLUTION`); the change is spliced into the cell's text, so the rest of the cell, comments
included, stays as written. `course validate --auto-mutants` grades them and lists the survivors: code
that no test checks.

Operators: arithmetic and comparison swaps, boolean and/or, dropped negation, changed constants, axis
arguments changed or dropped, dropped transposes, sum<->mean, max<->min and similar, swapped arguments,
deleted statements. Changes inside print() calls are skipped: no test can see them.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass

from nbformat import NotebookNode

from autograder.notebook import cells

BINARY_SWAPS = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
}  # fmt: skip
COMPARE_SWAPS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip
NAME_SWAPS = {
    "sum": "mean", "mean": "sum", "max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum",
    "argmax": "argmin", "argmin": "argmax", "amax": "amin", "amin": "amax", "zeros": "ones", "ones": "zeros",
    "zeros_like": "ones_like", "ones_like": "zeros_like", "exp": "log", "log": "exp", "sqrt": "square",
    "detach": "clone", "train": "eval", "eval": "train", "no_grad": "enable_grad",
}  # fmt: skip
AXIS_KEYWORDS = {"axis", "dim", "axes", "keepdims", "keepdim"}
SYMMETRIC = {"maximum", "minimum", "add", "multiply", "max", "min", "hypot", "logical_and", "logical_or", "isclose",
             "allclose", "array_equal"}  # swapping their arguments changes nothing
MAX_SHOWN = 60


@dataclass(frozen=True)
class AutoMutant:
    cell: str  # grade_id of the solution cell
    line: int  # 1-based line in the cell
    before: str
    after: str
    source: str  # the whole cell, mutated
    occurrence: int = 1

    @property
    def id(self) -> str:
        """Stable name: what mutants.toml's [[accepted]] entries refer to."""
        suffix = f" (#{self.occurrence})" if self.occurrence > 1 else ""
        return f"{self.cell}: line {self.line}: `{_short(self.before)}` -> `{_short(self.after)}`{suffix}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def solution_lines(source: str) -> set[int]:
    """1-based numbers of the lines inside solution regions."""
    inside, lines = False, set()
    for number, line in enumerate(source.split("\n"), start=1):
        if line.strip() == cells.BEGIN_SOLUTION:
            inside = True
        elif line.strip() == cells.END_SOLUTION:
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _in_print(tree: ast.AST) -> set[int]:
    """ids of nodes that are a print(...) statement or sit inside one."""
    inside = set()
    for node in ast.walk(tree):
        call = node.value if isinstance(node, ast.Expr) else node
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print":
            inside.update(id(child) for child in ast.walk(node))
    return inside


def _changed_copies(node: ast.AST) -> Iterator[ast.AST]:
    """Every one-step mutation of this node (a modified copy), or nothing."""
    if isinstance(node, ast.BinOp):
        if type(node.op) in BINARY_SWAPS:
            yield ast.BinOp(node.left, BINARY_SWAPS[type(node.op)](), node.right)
        if isinstance(node.op, ast.MatMult):
            yield ast.BinOp(node.right, ast.MatMult(), node.left)
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINARY_SWAPS:
        yield ast.AugAssign(node.target, BINARY_SWAPS[type(node.op)](), node.value)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield node.operand
    elif isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARE_SWAPS:
        yield ast.Compare(node.left, [COMPARE_SWAPS[type(node.ops[0])](), *node.ops[1:]], node.comparators)
    elif isinstance(node, ast.BoolOp):
        yield ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield ast.Constant(not node.value)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int):
        yield ast.Constant(node.value + 1)
        if node.value == 1:
            yield ast.Constant(0)
    elif isinstance(node, ast.Constant) and isinstance(node.value, float):
        yield ast.Constant(node.value * 2 if node.value else 1.0)
    elif isinstance(node, ast.Attribute) and node.attr in ("T", "mT"):
        yield node.value
    elif isinstance(node, ast.Call):
        yield from _changed_calls(node)


def _changed_calls(node: ast.Call) -> Iterator[ast.AST]:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if name in NAME_SWAPS:
        changed = copy.copy(node)
        if isinstance(node.func, ast.Attribute):
            changed.func = ast.Attribute(node.func.value, NAME_SWAPS[name], ast.Load())
        else:
            changed.func = ast.Name(NAME_SWAPS[name], ast.Load())
        yield changed
    if name in ("transpose", "permute", "t") and isinstance(node.func, ast.Attribute):
        yield node.func.value
    for index, keyword in enumerate(node.keywords):
        if keyword.arg in AXIS_KEYWORDS:
            yield ast.Call(node.func, node.args, node.keywords[:index] + node.keywords[index + 1 :])
    positional = [arg for arg in node.args if not isinstance(arg, ast.Starred)]
    pair_swap = name in ("transpose", "swapaxes", "swapdims") and len(node.args) == 2  # t(a, b) == t(b, a)
    if len(positional) == len(node.args) >= 2 and name not in SYMMETRIC and not pair_swap:
        yield ast.Call(node.func, [node.args[1], node.args[0], *node.args[2:]], node.keywords)


DELETABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return)


def _offsets(source: str) -> list[int]:
    """Byte offset of each line's start (ast positions are UTF-8 byte columns)."""
    starts, total = [], 0
    for line in source.encode().split(b"\n"):
        starts.append(total)
        total += len(line) + 1
    return starts


def _splice(source: str, node: ast.AST, text: str) -> str:
    data, starts = source.encode(), _offsets(source)
    begin = starts[node.lineno - 1] + node.col_offset
    end = starts[node.end_lineno - 1] + node.end_col_offset
    return (data[:begin] + text.encode() + data[end:]).decode()


def _segment(source: str, node: ast.AST) -> str:
    data, starts = source.encode(), _offsets(source)
    begin = starts[node.lineno - 1] + node.col_offset
    return data[begin : starts[node.end_lineno - 1] + node.end_col_offset].decode()


def cell_mutants(grade_id: str, source: str) -> list[AutoMutant]:
    """Every automatic mutant of one solution cell, in the order of the cell's text."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    region = solution_lines(source)
    printed = _in_print(tree)
    found: list[AutoMutant] = []
    seen: dict[tuple[int, str, str], int] = {}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or id(node) in printed:
            continue
        if not set(range(node.lineno, node.end_lineno + 1)) <= region:
            continue
        before = _segment(source, node)
        replacements = [ast.unparse(changed) for changed in _changed_copies(node)]
        if isinstance(node, DELETABLE) and not isinstance(node, ast.Expr | ast.Return) or _is_call_statement(node):
            replacements.append("pass")
        for after in replacements:
            if after == before or " ".join(after.split()) == " ".join(before.split()):
                continue
            key = (node.lineno, _short(before), _short(after))
            seen[key] = seen.get(key, 0) + 1
            found.append(AutoMutant(grade_id, node.lineno, before, after, _splice(source, node, after), seen[key]))
    return sorted(found, key=lambda m: (m.line, m.before, m.after, m.occurrence))


def _is_call_statement(node: ast.AST) -> bool:
    """A statement that is a call on its own (`optimizer.step()`, `np.add.at(...)`): deleting it matters."""
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)


def notebook_mutants(notebooks: dict[str, NotebookNode]) -> list[tuple[str, AutoMutant]]:
    """(notebook name, mutant) for every solution cell of every source notebook."""
    found = []
    for name, notebook in notebooks.items():
        for cell in notebook.cells:
            if cell.cell_type == "code" and cells.role(cell) == "solution" and cells.grade_id(cell):
                found.extend((name, mutant) for mutant in cell_mutants(cells.grade_id(cell), cell.source))
    return found
