"""The trusted judge: runs the SOURCE notebook's test cells against the student process.

Name resolution is the security boundary:
- names bound by read-only cells and test cells (run here, from the source) are trusted and always win;
- builtins are always the judge's own;
- a module the student imported resolves to the judge's own copy of that module;
- any other name the student defined becomes a copy of its data, or a StudentObject stand-in.

A test may patch or delete a name the student's code defines, as nbgrader tests do to check that one
student function uses another (`orig = squares; del squares; ...; squares = orig`). Such writes are
carried out in the student process too, for the duration of the test: what a test may put there is a
deletion, one of the student's own objects, or plain data in place of plain data. A judge-side function
in place of a student function is an authoring error (it would run in the student process, with the
student's privileges, where nothing of the judge may run); other judge-side values stay judge-side.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import hashlib
import importlib
import io
import math
import random
import sys
import time
from dataclasses import dataclass
from types import CodeType

from autograder.grading.proxy import StudentLink, StudentObject
from autograder.grading.student_process import StudentError, StudentGone, StudentProcess, StudentTimeout
from autograder.i18n import _
from autograder.notebook import cells
from course_utils.i18n import translate_message

JUDGE_MODULE_ROOTS = {
    "numpy", "torch", "math", "cmath", "random", "statistics", "time", "collections", "itertools",
    "functools", "operator", "string", "re", "json", "copy", "dataclasses", "typing", "scipy", "sklearn",
    "matplotlib", "course_utils", "gymnasium",
}  # fmt: skip
OUTPUT_LIMIT = 16 * 1024


class CourseCodeError(Exception):
    """A read-only source cell failed in the judge: an authoring problem, not the student's."""


@dataclass
class TestOutcome:
    score: float
    message: str  # what went wrong, or "" when the cell passed
    output: str  # what the public part of the test printed
    hidden_failed: bool = False  # the failure is in a hidden block: its message is hidden too


STUDENT_WRITE = "__course_student_write__"  # what a rewritten test calls after writing a student's name


def _written_names(statement: ast.stmt) -> list[str]:
    """The names a statement binds or deletes at the level it runs (not inside functions it defines)."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [statement.name]
    if isinstance(statement, ast.Assign | ast.Delete):
        targets = statement.targets
    elif isinstance(statement, ast.AugAssign) or (isinstance(statement, ast.AnnAssign) and statement.value):
        targets = [statement.target]
    else:
        return []
    found = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)]
    return list(dict.fromkeys(found))


def _report_writes(body: list[ast.stmt], names: frozenset[str]) -> list[ast.stmt]:
    """`body` with a call to STUDENT_WRITE after every statement that writes one of `names`, at the test
    cell's own level and inside its if/for/while/with/try blocks (a function's assignments are local)."""
    rewritten = []
    for statement in body:
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(statement, field, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    setattr(statement, field, _report_writes(block, names))
            for handler in getattr(statement, "handlers", []):
                handler.body = _report_writes(handler.body, names)
        rewritten.append(statement)
        for name in _written_names(statement):
            if name in names:
                call = ast.Call(ast.Name(STUDENT_WRITE, ast.Load()), [ast.Constant(name)], [])
                rewritten.append(ast.copy_location(ast.Expr(call), statement))
    return rewritten


@functools.lru_cache(maxsize=1024)
def _compiled_segment(
    segment: str, name: str, keep_value: bool, student_names: frozenset[str] = frozenset()
) -> tuple[CodeType, CodeType | None]:
    """A test segment compiled once per worker, not once per submission (every submission runs the same
    tests): its statements, and with keep_value its last expression apart, for nbgrader's partial credit.
    Writes of `student_names` are reported to the judge (see _report_writes)."""
    tree = ast.parse(segment, filename=name)
    last = None
    if keep_value and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body.pop()
    if student_names:
        tree.body = _report_writes(tree.body, student_names)
        ast.fix_missing_locations(tree)
    body = compile(tree, name, "exec")
    return body, (compile(ast.Expression(last.value), name, "eval") if last is not None else None)


@functools.lru_cache(maxsize=4096)
def _tree(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def _nodes(code: str) -> list[ast.AST]:
    tree = _tree(code)
    return list(ast.walk(tree)) if tree is not None else []


@functools.lru_cache(maxsize=4096)
def referenced_names(code: str) -> frozenset[str]:
    return frozenset(node.id for node in _nodes(code) if isinstance(node, ast.Name))


def _bound_by(node: ast.AST) -> set[str]:
    """The names one statement-level node binds in its own scope (not inside nested functions)."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        return {node.id}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return set()


@functools.lru_cache(maxsize=4096)
def bound_anywhere(code: str) -> frozenset[str]:
    """Every name the cell binds, function locals included: what a cell needs from outside is what it
    references and binds nowhere (JudgeCache)."""
    return frozenset(name for node in _nodes(code) for name in _bound_by(node))


@functools.lru_cache(maxsize=4096)
def assigned_names(code: str) -> frozenset[str]:
    """The cell's global names: what it binds at module level, and what its functions declare `global`.
    A local of a function is not one: it must not hide the student's global of the same name."""
    tree = _tree(code)
    if tree is None:
        return frozenset()
    names: set[str] = set()
    pending = list(ast.iter_child_nodes(tree))
    while pending:
        node = pending.pop()
        names |= _bound_by(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            names |= {name for inner in ast.walk(node) if isinstance(inner, ast.Global) for name in inner.names}
            continue  # its body is another scope
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue  # comprehension variables are local to it
        pending.extend(ast.iter_child_nodes(node))
    return frozenset(names)


@functools.lru_cache(maxsize=4096)
def parameter_names(code: str) -> frozenset[str]:
    """Names of function and lambda parameters: local to their function, never a need from outside."""
    return frozenset(node.arg for node in _nodes(code) if isinstance(node, ast.arg))


def _capped(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n... [output truncated]\n"


def _describe(error: BaseException) -> str:
    """What a student reads about a failed test, in the grading language (autograder.i18n.use)."""
    if isinstance(error, StudentError):
        frames = [line for line in error.student_traceback.splitlines() if line.startswith("  File ")]
        where = "\n  " + _("(last place in your code: {frame})").format(frame=frames[-1].strip()) if frames else ""
        return _("your code raised {error}").format(error=error) + where
    if isinstance(error, AssertionError):
        if not str(error):
            return _("AssertionError (a check in the test failed)")
        return f"AssertionError: {translate_message(str(error))}"  # a test's own message, translated
    if isinstance(error, StudentTimeout):
        return f"TimeoutError: {error}"
    if isinstance(error, StudentGone):
        return _("not graded: {reason}").format(reason=error)
    return f"{type(error).__name__}: {error}"


class JudgeCache:
    """Per-worker warm state: what read-only cells define, computed once per assignment.

    A read-only cell is cached only when it uses nothing but what earlier read-only cells defined (so
    its result cannot depend on a student). The key is the chain of read-only cells so far plus the
    random number generators' states on entry; their states after the cell are cached too, so tests
    draw the same numbers warm or cold. Tests must not mutate these shared objects in place (they are
    the same objects for every submission a worker grades).
    """

    def __init__(self):
        self.cells: dict[str, tuple[dict, tuple]] = {}

    def warm(self, notebooks: dict) -> None:
        """Run each notebook's cacheable read-only cells now, before the first submission arrives."""
        for notebook in notebooks.values():
            judge = Judge(None, self)
            for cell in notebook.cells:
                if cell.cell_type != "code" or cells.role(cell) != "readonly":
                    continue
                if not judge.can_cache(cell.source):
                    judge.readonly_key.update(cell.source.encode() + b"\0")  # keep the chain of keys aligned
                    continue
                try:
                    judge.run_readonly(cell.source, cells.grade_id(cell) or "")
                except CourseCodeError:
                    break  # grading reports it, with the submission that meets it


def _rng_states() -> tuple:
    import numpy
    import torch

    return random.getstate(), numpy.random.get_state(), torch.get_rng_state()


def _rng_fingerprint() -> bytes:
    python_state, (_, keys, position, *_), torch_state = _rng_states()
    return hashlib.sha256(
        repr(python_state).encode() + keys.tobytes() + str(position).encode() + torch_state.numpy().tobytes()
    ).digest()


def _seed_rngs() -> None:
    """Every submission's tests start from the same global random state: a re-grade draws the same numbers."""
    import numpy
    import torch

    random.seed(0)
    numpy.random.seed(0)
    torch.manual_seed(0)


def _set_rng_states(states: tuple) -> None:
    import numpy
    import torch

    random.setstate(states[0])
    numpy.random.set_state(states[1])
    torch.set_rng_state(states[2])


class Judge:
    def __init__(
        self,
        process: StudentProcess | None,
        cache: JudgeCache | None = None,
        solution_names: frozenset[str] = frozenset(),
    ):
        self.process = process
        self.link = StudentLink(process)
        self.cache = cache
        self.solution_names = solution_names  # what the source's solution cells define (a test may patch them)
        self.namespace: dict = {"__name__": "__judge__", "__builtins__": builtins, STUDENT_WRITE: self._student_write}
        self.test_grade_id = ""
        self.student_values: dict[str, object] = {}  # the student's values of the names the test may write
        self.patched = False
        self.trusted: set[str] = set()
        self.readonly_defined: set[str] = set()
        self.bound_from_student: set[str] = set()
        self.trusted_code: list[str] = []
        self.readonly_key = hashlib.sha256()
        _seed_rngs()

    def can_cache(self, code: str) -> bool:
        """A read-only cell that needs nothing but what earlier read-only cells defined."""
        needs = referenced_names(code) - bound_anywhere(code) - parameter_names(code) - set(dir(builtins))
        return self.cache is not None and needs <= self.readonly_defined

    def run_readonly(self, code: str, grade_id: str) -> None:
        """Run a read-only source cell judge-side, so what it defines is trusted."""
        self._unbind_student_names()
        self.readonly_key.update(code.encode() + b"\0")
        cacheable = self.can_cache(code)
        key = self.readonly_key.hexdigest() + _rng_fingerprint().hex() if cacheable else ""
        if cacheable and key in self.cache.cells:
            bindings, states = self.cache.cells[key]
            self.namespace.update(bindings)
            _set_rng_states(states)
        else:
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    exec(compile(code, f"<read-only cell {grade_id}>", "exec"), self.namespace)
            except Exception as error:
                raise CourseCodeError(
                    f"read-only cell {grade_id!r} failed in the judge ({type(error).__name__}: {error}); "
                    "read-only cells must not use names the student defines"
                ) from None
            if cacheable:
                bindings = {name: self.namespace[name] for name in assigned_names(code) if name in self.namespace}
                self.cache.cells[key] = (bindings, _rng_states())
        self.readonly_defined |= assigned_names(code)
        self.trusted |= assigned_names(code)
        self.trusted_code.append(code)

    def _unbind_student_names(self) -> None:
        for name in self.bound_from_student:
            self.namespace.pop(name, None)
        self.bound_from_student = set()

    def _bind_student_names(self, code: str) -> None:
        self._unbind_student_names()
        wanted = referenced_names(code)
        for trusted_code in self.trusted_code:
            wanted |= referenced_names(trusted_code)
        wanted -= self.trusted
        wanted -= set(dir(builtins))
        if not wanted:
            return
        modules, values = self.link.bind(sorted(wanted))  # one round trip for all of them
        for name in sorted(modules.keys() | values.keys()):
            if name in modules:
                value = self._judge_module(modules[name])
                if value is None:
                    continue
            else:
                value = values[name]
            self.namespace[name] = value
            self.bound_from_student.add(name)

    @staticmethod
    def _judge_module(module_name: str):
        if module_name in sys.modules:
            return sys.modules[module_name]
        if module_name.split(".")[0] in JUDGE_MODULE_ROOTS:
            try:
                return importlib.import_module(module_name)
            except ImportError:
                return None
        return None

    def _student_write(self, name: str) -> None:
        """The test just assigned or deleted `name`, which the student's code defines: do the same in the
        student process (until the test ends), when what it now holds may go there."""
        if name not in self.namespace:
            self.link.delete_global(name)
            self.patched = True
            return
        value = self.namespace[name]
        if isinstance(value, StudentObject):
            self.link.set_global(name, value)
            self.patched = True
        elif callable(value):
            raise CourseCodeError(
                f"test cell {self.test_grade_id!r} puts a judge-side {type(value).__name__} in place of "
                f"{name!r}, which the student's code defines: it cannot run in the student process (it would "
                "run with the student's privileges). A test may delete a student's name, or put one of the "
                "student's own objects or plain data in its place"
            )
        elif not isinstance(self.student_values.get(name), StudentObject):  # data in place of data
            try:
                self.link.set_global(name, value)
            except TypeError:  # a judge-side object the wire does not carry: it stays the test's own
                return
            self.patched = True

    def _restore_student_globals(self) -> None:
        """Undo the test's writes in the student process, whatever happened in the test."""
        self.patched = False
        self.link.set_budget(10.0)
        try:
            self.link.restore_globals()
        except (StudentGone, StudentTimeout, StudentError):
            pass  # a student process that cannot answer is not graded further anyway

    def run_test(self, code: str, grade_id: str, max_points: float, timeout: float) -> TestOutcome:
        """Run one test cell (source version, hidden blocks included) segment by segment."""
        self.link.set_budget(timeout)
        output = io.StringIO()
        segments = cells.split_hidden(code)
        last_value = None
        failure: TestOutcome | None = None
        try:
            self._bind_student_names(code)
        except (StudentGone, StudentTimeout, StudentError) as error:
            return TestOutcome(0.0, _describe(error), "")
        student_names = frozenset(assigned_names(code) & self.solution_names & self.bound_from_student)
        self.test_grade_id = grade_id
        self.student_values = {name: self.namespace.get(name) for name in student_names}
        started = time.monotonic()
        for number, (hidden, segment) in enumerate(segments):
            is_last = number == len(segments) - 1
            try:
                public_out = output if not hidden else io.StringIO()
                with contextlib.redirect_stdout(public_out), contextlib.redirect_stderr(public_out):
                    last_value = self._exec_segment(segment, grade_id, is_last, student_names)
            except CourseCodeError:
                raise
            except Exception as error:  # the test failed: any exception is the test's verdict
                failure = TestOutcome(0.0, _describe(error), _capped(output.getvalue()), hidden_failed=hidden)
                break
            if time.monotonic() - started > timeout:
                failure = TestOutcome(
                    0.0,
                    "TimeoutError: " + _("the test took longer than {seconds} s").format(seconds=f"{timeout:g}"),
                    _capped(output.getvalue()),
                    hidden_failed=hidden,
                )
                break
        if self.patched:
            self._restore_student_globals()
        # What the test assigned is the test's own from now on (later tests see it, as in a notebook), except
        # a name of the student's that holds a student object or was deleted: bound from the student again.
        students = {name for name in student_names if isinstance(self.namespace.get(name, self), StudentObject)}
        students |= {name for name in student_names if name not in self.namespace}
        self.trusted |= assigned_names(code) - students
        self.trusted_code.append(code)
        if failure is not None:
            return failure
        return TestOutcome(self._score(last_value, max_points), "", _capped(output.getvalue()))

    def _exec_segment(self, segment: str, grade_id: str, keep_value: bool, student_names=frozenset()):
        body, last_value = _compiled_segment(segment, f"<test cell {grade_id}>", keep_value, student_names)
        exec(body, self.namespace)
        return None if last_value is None else eval(last_value, self.namespace)

    @staticmethod
    def _score(value, max_points: float) -> float:
        """nbgrader's rule: a numeric last expression is partial credit; anything else is full credit."""
        if isinstance(value, StudentObject):
            return 0.0
        if isinstance(value, bool) or value is None:
            return max_points
        try:
            number = float(value)
        except (TypeError, ValueError):
            return max_points
        if math.isnan(number):
            return 0.0
        return min(max(number, 0.0), max_points)
