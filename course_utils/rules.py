"""Rules for solution cells: what their code may not use ("by hand" exercises), and what it must use.

A source notebook declares a rule on a solution cell, beside its nbgrader metadata:

    "metadata": {"nbgrader": {...}, "course": {"forbid": ["torch"], "must_be": "written with numpy"}}

`forbid` lists dotted names: a module ("torch") forbids everything in it; a longer name
("torch.nn.functional.scaled_dot_product_attention") forbids that one thing. The check reads the
submitted cell's source, never runs it: imports, attribute chains through import aliases (`F.conv2d`
after `import torch.nn.functional as F`), and `__import__("torch")` / `importlib.import_module("torch")`.
It follows calls: a governed function that calls a helper using a forbidden name (a reference
implementation a read-only cell provides, like a1's `torch_backward`, or the student's own helper in
another cell) breaks the rule too. Scopes are Python's own, so a local that shares a helper's name is
not a call, and data a read-only cell loaded (`data = load_data()`) is not a call by the student.
It finds honest-but-lazy library use; it does not try to defeat deliberate obfuscation.

`require` is for what no test of behaviour can see (evaluating without torch.no_grad() gives the same
numbers, only slower and with more memory): each entry names a function the cell defines and dotted
names of which it must use one, itself or through the student functions it calls:

    "course": {"require": [{"function": "evaluate", "any_of": ["torch.no_grad", "torch.inference_mode"],
                            "why": "run the model without recording a graph"}]}

The grader (judge side) and the self-check both use this module, so it needs the standard library only.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import symtable
from dataclasses import dataclass

from course_utils.i18n import _, translate_message


class RuleError(Exception):
    """A rule declaration that cannot be right (not a list of names, or a name that does not exist)."""


@dataclass(frozen=True)
class Requirement:
    function: str  # a function the governed cell defines
    any_of: tuple[str, ...]  # dotted names; using one of them meets the requirement
    why: str  # completes "<function> must ...", e.g. "run the model without recording a graph"

    def message(self, uses: str) -> str:
        return _("{function} must {why}: it uses none of {names}").format(
            function=self.function, why=translate_message(self.why), names=uses)


@dataclass(frozen=True)
class Rule:
    forbid: tuple[str, ...]
    must_be: str  # completes "<function> must be ...", e.g. "written with numpy"
    require: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class Violation:
    line: int  # 1-based, in the cell
    used: str  # the dotted name found, e.g. "torch.autograd.grad"
    function: str | None  # the top-level function or class the line is in, if any

    def message(self, rule: Rule, cell: str) -> str:
        who = self.function or _("cell {cell}").format(cell=cell)
        return _("{function} must be {rule}: it uses {name} at line {line}").format(
            function=who, rule=translate_message(rule.must_be), name=self.used, line=self.line)


def _exists(dotted: str) -> bool:
    parts = dotted.split(".")
    try:
        if importlib.util.find_spec(parts[0]) is None:
            return False
    except (ImportError, ValueError):
        return False
    for end in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attribute in parts[end:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


_NAMES = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
          "description": "{where} must be a non-empty list of dotted names, not {value!r}"}  # fmt: skip
_NAMES["items"]["description"] = _NAMES["description"]
# What a source cell's metadata["course"] may hold: the self-check marker release writes, and a rule.
# Every "description" is the message for a value that breaks that part of the schema.
COURSE_METADATA_SCHEMA = {
    "type": "object",
    "description": "course metadata: {error}",
    "additionalProperties": False,
    "properties": {
        "selfcheck": {"type": "boolean"},
        "forbid": _NAMES,
        "must_be": {"type": "string", "description": "{where} must be text, not {value!r}"},
        "require": {
            "type": "array",
            "minItems": 1,
            "description": "{where} must be a non-empty list of {{function, any_of, why}}, not {value!r}",
            "items": {
                "type": "object",
                "required": ["function", "any_of", "why"],
                "additionalProperties": False,
                "description": "each course.require entry has exactly the keys function, any_of, why: {value!r}",
                "properties": {
                    "function": {"type": "string", "minLength": 1, "description": "{where} must be text: {value!r}"},
                    "any_of": _NAMES,
                    "why": {"type": "string", "description": "{where} must be text: {value!r}"},
                },
            },
        },
    },
}


@functools.cache
def _validator():
    import jsonschema  # here: a student's self-check never needs it (no rule on its cells)

    return jsonschema.Draft7Validator(COURSE_METADATA_SCHEMA)


def check_course_metadata(course) -> None:
    """RuleError, with the message of the part it breaks, unless a cell's metadata["course"] fits
    COURSE_METADATA_SCHEMA."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(course))
    if error is None:
        return
    path = [str(part) for part in error.absolute_path if not isinstance(part, int)]  # ["require", "any_of"]
    where = "course." + " ".join(path) if path else "course"
    template = error.schema.get("description", "{where}: {error}")
    raise RuleError(template.format(where=where, value=error.instance, error=error.message))


def rule_of(metadata: dict, check_names: bool = True) -> Rule | None:
    """The rule a cell declares in metadata["course"], or None. check_names: every name it lists must
    exist (importable module, or an attribute of one)."""
    course = metadata.get("course")
    if course is None:
        return None
    declares = isinstance(course, dict) and bool({"forbid", "require"} & set(course))
    if check_names or declares:
        check_course_metadata(course)  # authoring: a misspelt key ("forbids") must not silently switch a rule off
    if not declares:
        return None
    forbid = tuple(course.get("forbid", ()))
    must_be = course.get("must_be", "written without " + ", ".join(forbid))
    require = tuple(Requirement(r["function"], tuple(r["any_of"]), r["why"]) for r in course.get("require", ()))
    if check_names:
        for field, listed in (("forbid", forbid), ("require", [n for r in require for n in r.any_of])):
            unknown = [name for name in listed if not _exists(name)]
            if unknown:
                raise RuleError(f"course.{field} names {', '.join(unknown)}, which is not a module or anything in one")
    return Rule(forbid, must_be, require)


@functools.lru_cache(maxsize=4096)
def _tree(code: str) -> ast.Module | None:
    """The cell's syntax tree, parsed once per worker: every test of every submission asks again. Read only."""
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


@functools.lru_cache(maxsize=4096)
def import_aliases(code: str) -> dict[str, str]:
    """{local name: dotted name} for every import in the code (anywhere in it). Read only (cached)."""
    tree = _tree(code)
    if tree is None:
        return {}
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """`F.conv2d` -> "torch.nn.functional.conv2d" when F is an import alias; None otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def _matches(used: str, forbid: tuple[str, ...]) -> bool:
    return any(used == name or used.startswith(name + ".") for name in forbid)


def _imported_by_call(node: ast.Call) -> str | None:
    """The module a `__import__("x")` or `importlib.import_module("x")` call names, if a constant."""
    func = node.func
    is_import = (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )
    if is_import and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def _functions(tree: ast.Module) -> list[tuple[int, int, str]]:
    return [
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]


def violations(code: str, rule: Rule, known_aliases: dict[str, str] | None = None) -> list[Violation]:
    """Every use of a forbidden name in the code, one per line, in line order. known_aliases: the imports
    that earlier cells made (a notebook's setup cell imports torch; using it here still counts)."""
    tree = _tree(code)
    if tree is None:
        return []  # the cell cannot run at all; its tests fail on their own
    aliases = {**(known_aliases or {}), **import_aliases(code)}
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    found: dict[int, str] = {}
    for node in ast.walk(tree):
        used = None
        if isinstance(node, ast.Import):
            used = next((alias.name for alias in node.names if _matches(alias.name, rule.forbid)), None)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            used = next((name for name in names if _matches(name, rule.forbid)), None)
        elif isinstance(node, ast.Call):
            used = _imported_by_call(node)
        elif isinstance(node, ast.Attribute | ast.Name) and id(node) not in inner:  # whole chains only
            used = _dotted(node, aliases)
        if used is not None and _matches(used, rule.forbid):
            found.setdefault(node.lineno, used)
    functions = _functions(tree)

    def function_at(line: int) -> str | None:
        return next((name for start, end, name in functions if start <= line <= end), None)

    return [Violation(line, used, function_at(line)) for line, used in sorted(found.items())]


def defined_names(code: str) -> set[str]:
    """Top-level functions, classes and assigned names of a cell: what a rule on it governs."""
    tree = _tree(code)
    if tree is None:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


@dataclass(frozen=True)
class GovernedCell:
    """A solution cell with a rule, and the names it defines (the names the rule follows into tests)."""

    grade_id: str
    rule: Rule
    names: frozenset[str]


def _names_in(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def referenced_names(code: str) -> set[str]:
    tree = _tree(code)
    return _names_in(tree) if tree is not None else set()


def _read_names(code: str) -> set[str]:
    """The names a test reads and does not bind itself (a test's own `rng = ...` is not the student's `rng`)."""
    tree = _tree(code)
    if tree is None:
        return set()
    names = [child for child in ast.walk(tree) if isinstance(child, ast.Name)]
    bound = {name.id for name in names if not isinstance(name.ctx, ast.Load)}
    return {name.id for name in names if isinstance(name.ctx, ast.Load)} - bound


def _affected_names(code: str, violation: Violation, governed: frozenset[str]) -> set[str]:
    """The names whose tests a violation fails: the function it is in and the cell's functions that call
    that one; everything the cell defines when it is outside any function."""
    if violation.function is None:
        return set(governed) | defined_names(code)
    return {violation.function} | {
        name for name, used in _function_bodies(code).items() if violation.function in used
    }


@functools.lru_cache(maxsize=4096)
def _function_bodies(code: str) -> dict[str, frozenset[str]]:
    """{top-level function or class: the global names its body reads} (a local that shares a name with
    another function is not a call of it). Read only (cached)."""
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    definitions = _definitions(code, runs_calls=True)
    tree = _tree(code)
    return {n.name: definitions[n.name][1] for n in (tree.body if tree else []) if isinstance(n, kinds)}


def _reached_names(names: set[str], student_cells: list[tuple[str | None, str]]) -> set[str]:
    """The names a test reaches: those it uses, and those the student's functions it uses call, and so on
    (a test of three_layer_convnet_loss depends on the conv_backward_naive it calls)."""
    bodies: dict[str, set[str]] = {}
    for _grade_id, code in student_cells:
        for name, used in _function_bodies(code).items():
            bodies.setdefault(name, set()).update(used)
    reached, todo = set(names), list(names)
    while todo:
        for name in bodies.get(todo.pop(), ()):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    return reached


@functools.lru_cache(maxsize=4096)
def _function_nodes(code: str) -> dict[str, ast.AST]:
    """{top-level function or class: its node}. Read only (cached)."""
    tree = _tree(code)
    if tree is None:
        return {}
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    return {node.name: node for node in tree.body if isinstance(node, kinds)}


def _uses_any(node: ast.AST, names: tuple[str, ...], aliases: dict[str, str]) -> bool:
    return any(
        (used := _dotted(child, aliases)) is not None and _matches(used, names)
        for child in ast.walk(node)
        if isinstance(child, ast.Attribute | ast.Name)
    )


def unmet_requirement(
    requirement: Requirement, student_cells: list[tuple[str | None, str]], aliases: dict[str, str]
) -> str | None:
    """The message when the student's `requirement.function` (its last definition) uses none of the
    names, itself or through the student functions it calls; None when it does, or is not defined."""
    definitions: dict[str, ast.AST] = {}
    for _grade_id, code in student_cells:
        definitions.update(_function_nodes(code))
    if requirement.function not in definitions:
        return None  # nothing to check: the tests fail on their own
    seen, todo = {requirement.function}, [requirement.function]
    while todo:
        node = definitions[todo.pop()]
        if _uses_any(node, requirement.any_of, aliases):
            return None
        for name in _names_in(node) & definitions.keys() - seen:
            seen.add(name)
            todo.append(name)
    return requirement.message(", ".join(requirement.any_of))


def _globals_used(table: symtable.SymbolTable) -> set[str]:
    """The global names a function or class body (nested scopes included) reads: its calls to helpers."""
    names = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_global() and symbol.is_referenced()}
    for child in table.get_children():
        names |= _globals_used(child)
    return names


@functools.lru_cache(maxsize=4096)
def _definitions(code: str, runs_calls: bool) -> dict[str, tuple[str, frozenset[str]]]:
    """{top-level function, class or assigned name: (its source, the global names it reads)}. Scopes are
    Python's own (symtable): a local or parameter that shares a helper's name is not a use of the helper.
    runs_calls: a student's cell, whose assignments run the code they call (`dx = torch_backward(...)`);
    a read-only cell's `data = load_data()` ran the loader for the notebook, not for the student, so
    there an assignment reads names only when it is another name for something (`tb = torch.autograd.grad`,
    a lambda). Read only (cached)."""
    tree = _tree(code)
    if tree is None:
        return {}
    try:
        tables = {table.get_name(): table for table in symtable.symtable(code, "cell", "exec").get_children()}
    except SyntaxError:
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name in tables:
            found[node.name] = (ast.get_source_segment(code, node) or "", frozenset(_globals_used(tables[node.name])))
        elif isinstance(node, ast.Assign):
            value = f"({ast.get_source_segment(code, node.value) or ''})"
            is_alias = isinstance(node.value, ast.Name | ast.Attribute | ast.Lambda)
            uses = frozenset(_names_in(node.value)) if runs_calls or is_alias else frozenset()
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = (value if runs_calls or is_alias else "", uses)
    return found


def _helper_violation(
    start: frozenset[str], definitions: dict[str, tuple[str, frozenset[str]]], rule: Rule, aliases: dict[str, str]
) -> tuple[list[str], Violation] | None:
    """(the chain of calls, the violation at its end) for the nearest helper that the names `start` reach,
    through the helpers' own calls, and that uses a forbidden name: a provided function that calls torch,
    or one the student wrote in another cell. None when every helper reached keeps the rule."""
    chains = {name: [name] for name in start & definitions.keys()}
    todo = sorted(chains)
    while todo:
        name = todo.pop(0)
        code, uses = definitions[name]
        found = violations(code, rule, aliases)
        if found:
            return chains[name], found[0]
        for used in sorted(uses & definitions.keys() - chains.keys() - start):
            chains[used] = [*chains[name], used]
            todo.append(used)
    return None


def broken_rules(
    test_code: str,
    governed: list[GovernedCell],
    student_cells: list[tuple[str | None, str]],
    setup_code: list[str],
) -> list[str]:
    """Messages for the rules a test depends on that the student's code breaks.

    A test depends on a rule when it names something the governed cell defines. The code checked is the
    governed cell as submitted, and any other student cell that (re)defines one of those names; a use of a
    forbidden name inside one function fails the tests of that function and of the student's functions
    that call it, directly or not.
    student_cells: (grade_id or None for an added cell, code) of the student's cells before the test;
    setup_code: the read-only cells before the test (their imports are aliases the student can use)."""
    if not governed:
        return []
    referenced = _reached_names(_read_names(test_code), student_cells)
    relevant = [cell for cell in governed if cell.names & referenced]
    if not relevant:
        return []
    aliases: dict[str, str] = {}
    for code in [*setup_code, *(code for _grade_id, code in student_cells)]:
        aliases.update(import_aliases(code))
    messages = []
    for cell in relevant:
        wanted = cell.names & referenced
        for requirement in cell.rule.require:
            if requirement.function in wanted:
                message = unmet_requirement(requirement, student_cells, aliases)
                messages += [message] if message else []
        if not cell.rule.forbid:
            continue
        cell_messages = []
        for grade_id, code in student_cells:
            if grade_id == cell.grade_id or (grade_id is None and defined_names(code) & wanted):
                found = violations(code, cell.rule, aliases)
                found = [v for v in found if _affected_names(code, v, cell.names) & wanted]
                cell_messages += [found[0].message(cell.rule, cell.grade_id)] if found else []
        if not cell_messages:
            cell_messages += _message_for_helpers(cell, wanted, setup_code, student_cells, aliases)
        messages += cell_messages[:1]
    return messages


def _message_for_helpers(
    cell: GovernedCell, wanted: set[str], setup_code: list[str], student_cells: list[tuple[str | None, str]],
    aliases: dict[str, str],
) -> list[str]:
    """The message when a governed function the test reaches calls a helper that breaks the rule: one of
    the notebook's read-only cells (which may use anything) or a student cell. The student's own
    definitions replace the notebook's, as they would when the cells run."""
    definitions: dict[str, tuple[str, frozenset[str]]] = {}
    for code in setup_code:
        definitions.update(_definitions(code, runs_calls=False))
    for _grade_id, code in student_cells:
        definitions.update(_definitions(code, runs_calls=True))
    for name in sorted(wanted & definitions.keys()):
        reached = _helper_violation(definitions[name][1] - {name}, definitions, cell.rule, aliases)
        if reached is not None:
            chain, violation = reached
            calls = "".join(_("{helper}, which calls ").format(helper=helper) for helper in chain[:-1])
            return [_("{function} must be {rule}: it calls {calls}{helper}, which uses {name}").format(
                function=name, rule=translate_message(cell.rule.must_be), calls=calls, helper=chain[-1],
                name=violation.used)]
    return []
