"""Self-check: run an exercise's public tests again and show, check by check, what passes.

Every released notebook has, after each test cell, a cell like

    from course_utils.selfcheck import check
    check("a1_backprop.ipynb", "test_affine_backward")

and at the end `check_all("a1_backprop.ipynb")`. They read the test cells from the notebook file (the one
in the kernel's working folder), run their code in your kernel, one statement at a time, and show a table:

    test_affine_backward: 2 of 3 public checks passed
    PASS  line 7  assert_close("dx", dx, dx_true, tol=1e-8, hint="dx = dout @ w.T has the shape of x")
    FAIL  line 8  assert_close("dw", dw, dw_true, tol=1e-8, hint="dw has the shape of w, (D, M): which...
          dw: relative error 3.1e-02 > 1e-08, worst at [2, 3]
          hint: dw has the shape of w, (D, M): which product gives that?

A "check" is a statement that asserts something (an `assert`, or a call to an `assert_...` helper or to a
function of the test that asserts). Other statements prepare the checks (`out, cache = affine_forward(x,
w, b)`); if one of them fails, the row says ERROR and the rest of that test is not run.

Only the public tests run here: the hidden ones are not in your notebook. Passing every public test is a
good sign, not a guarantee of full marks. Grading never uses this: it runs the instructor's copy of the
tests. So check() and check_all() never raise; they report.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import traceback
import unicodedata
from dataclasses import dataclass, field

import jinja2

from course_utils import rules
from course_utils.i18n import _, translate_message

MAX_CODE_CHARS = 70  # a check's code is shown on one line, cut to this length


@dataclass
class Row:
    """One checked statement: PASS, FAIL (the check found a wrong value) or ERROR (the test could not run)."""

    status: str
    line: int | None  # line in the test cell, 1-based
    code: str  # the statement's first line
    message: str = ""
    hint: str = ""
    note: str = ""


@dataclass
class TestResult:
    """The public part of one test cell, checked."""

    grade_id: str
    checks: int = 0  # how many statements of the public part are checks
    rows: list[Row] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(row.status == "PASS" for row in self.rows)

    @property
    def ok(self) -> bool:
        return all(row.status == "PASS" for row in self.rows) and self.passed == self.checks

    @property
    def status(self) -> str:
        if self.ok:
            return "PASS"
        return "ERROR" if any(row.status == "ERROR" for row in self.rows) else "FAIL"

    @property
    def first_problem(self) -> Row | None:
        return next((row for row in self.rows if row.status != "PASS"), None)

    def headline(self) -> str:
        if self.rows and self.rows[0].line is None and self.rows[0].status == "ERROR":  # notebook or cell unreadable
            return _("{test}: not checked").format(test=self.grade_id)
        if self.checks == 0 and self.ok:
            return _("{test}: ran without error (no public checks; hidden tests decide)").format(test=self.grade_id)
        return _("{test}: {passed} of {checks} public checks passed").format(
            test=self.grade_id, passed=self.passed, checks=self.checks)


# --- what the cell shows: HTML in JupyterLab, text in a terminal -----------------------------------------

# The tables Jupyter shows. Autoescape: test code and messages are text, never markup.
_HTML = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
_HTML.globals["colours"] = {"PASS": "#1a7f37", "FAIL": "#cf222e", "ERROR": "#9a6700"}
_MACROS = """
{% macro status(s) %}
<td class="{{ s.lower() }}" style="color:{{ colours[s] }};font-weight:bold">{{ labels.status[s] }}</td>
{% endmacro %}
{% macro message(row) %}
{% for line in row.message.split("\\n") %}{% if not loop.first %}<br>{% endif %}{{ line }}{% endfor %}
{% if row.hint %}<br><i>{{ labels.hint }}{{ row.hint }}</i>{% endif %}
{% if row.note %}<br>{{ row.note }}{% endif %}
{% endmacro %}
"""
_TEST_TABLE = _HTML.from_string(_MACROS + """
<table class="course-selfcheck"><caption>{{ test.headline() }}</caption>
{% for row in test.rows %}
<tr>{{ status(row.status) }}<td>{{ labels.line.format(row.line) if row.line else "" }}</td>
<td><code>{{ row.code }}</code></td>
<td>{{ message(row) }}</td></tr>
{% endfor %}
</table>
""")
_NOTEBOOK_TABLE = _HTML.from_string(_MACROS + """
<table class="course-selfcheck">
{% for test in tests %}
{% set problem = test.first_problem %}
<tr>{{ status(test.status) }}<td>{{ test.grade_id }}</td><td>{{ labels.of.format(test.passed, test.checks) }}</td>
<td>{% if problem %}{{ labels.line.format(problem.line) + ": " if problem.line else "" }}
{{- message(problem) }}{% endif %}</td></tr>
{% endfor %}
<tfoot><tr><td colspan="4"><b>{{ summary }}</b></td></tr></tfoot>
</table>
""")


def _labels() -> dict[str, str]:
    """The words around the rows, in the language in use (read when a table is shown)."""
    return {"hint": _("hint: "), "line": _("line {}"), "of": _("{} of {}"), "status": _status_words()}


def _status_words() -> dict[str, str]:
    return {"PASS": _("PASS"), "FAIL": _("FAIL"), "ERROR": _("ERROR")}


def _status_column(status: str) -> str:
    """The status word, padded to the width of "ERROR " on a terminal (a CJK character takes two columns)."""
    word = _status_words()[status]
    width = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in word)
    return word + " " * max(1, 6 - width)


def _text_lines(row: Row, first: str) -> list[str]:
    lines = [f"{_status_column(row.status)}{first}"]
    lines += [f"      {line}" for line in row.message.splitlines()]
    if row.hint:
        lines.append(f"      {_('hint: ')}{row.hint}")
    if row.note:
        lines.append(f"      {row.note}")
    return lines


class CheckResult:
    """What check() returns: one test cell, one row per check."""

    def __init__(self, test: TestResult):
        self.test = test

    @property
    def ok(self) -> bool:
        return self.test.ok

    def _repr_html_(self) -> str:
        return _TEST_TABLE.render(test=self.test, labels=_labels()).strip()

    def __str__(self) -> str:
        lines = [self.test.headline()]
        for row in self.test.rows:
            where = _("line {}").format(row.line) + "  " if row.line else ""
            lines += _text_lines(row, f"{where}{row.code}")
        return "\n".join(lines)

    __repr__ = __str__


class NotebookResult:
    """What check_all() returns: one row per test cell, then `Public tests passed: X of Y`."""

    def __init__(self, tests: list[TestResult]):
        self.tests = tests

    @property
    def passed(self) -> int:
        return sum(test.ok for test in self.tests)

    @property
    def ok(self) -> bool:
        return self.passed == len(self.tests)

    def summary(self) -> str:
        return _("Public tests passed: {passed} of {total}").format(passed=self.passed, total=len(self.tests))

    def _repr_html_(self) -> str:
        return _NOTEBOOK_TABLE.render(tests=self.tests, summary=self.summary(), labels=_labels()).strip()

    def __str__(self) -> str:
        width = max((len(test.grade_id) for test in self.tests), default=0)
        lines = []
        for test in self.tests:
            counts = _("{passed} of {checks} checks").format(passed=test.passed, checks=test.checks)
            lines.append(f"{_status_column(test.status)}{test.grade_id:<{width}}  {counts}")
            problem = test.first_problem
            if problem is not None:  # the first problem is enough to start from; check() shows them all
                where = _("line {}").format(problem.line) + "  " if problem.line else ""
                lines += ["  " + line for line in _text_lines(problem, f"{where}{problem.code}")]
        lines.append(self.summary())
        return "\n".join(lines)

    __repr__ = __str__


# --- reading the notebook ----------------------------------------------------------------------------------


class NotebookProblem(Exception):
    """The notebook file cannot be used for a self-check; the message says why and what to do."""


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def public_part(code: str) -> str:
    """A test cell without its hidden block, lines blanked so line numbers stay those of the cell.

    Released notebooks have no hidden tests, but nbgrader's autograde puts them back (between these
    markers) before it runs a notebook: the self-check still shows public checks only.
    """
    lines, hidden = [], False
    for line in code.split("\n"):
        if line.strip() in ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"):
            hidden = line.strip() == "### BEGIN HIDDEN TESTS"
            lines.append("")
        else:
            lines.append("" if hidden else line)
    return "\n".join(lines)


def read_test_cells(notebook_file: str) -> dict[str, str]:
    """{grade_id: code} of the notebook's autograded test cells, in notebook order."""
    path = os.path.abspath(notebook_file)
    if not os.path.isfile(path):
        here = os.path.dirname(path)
        others = sorted(name for name in os.listdir(here) if name.endswith(".ipynb")) if os.path.isdir(here) else []
        found = ""
        if others:
            found = _(" (notebooks there: {names})").format(names=", ".join(others))
        raise NotebookProblem(_(
            "{notebook} not found in {folder}{found}. The self-check reads the tests from the notebook file itself: "
            "if you renamed or moved it, give it its name back (it is also the name graded)."
        ).format(notebook=os.path.basename(path), folder=here, found=found))
    try:
        with open(path, encoding="utf-8") as file:
            notebook = json.load(file)
        cells = notebook["cells"]
        tests = {}
        for cell in cells:
            nbgrader = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "code" and nbgrader.get("grade") and nbgrader.get("grade_id"):
                tests[str(nbgrader["grade_id"])] = public_part(_source(cell))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise NotebookProblem(_(
            "{notebook} could not be read as a course notebook ({error}); "
            "download a fresh copy of the assignment and copy your code into it."
        ).format(notebook=os.path.basename(path), error=f"{type(error).__name__}: {error}")) from None
    return tests


def rule_messages(notebook_file: str, grade_id: str) -> list[str]:
    """What the rules of the notebook's "by hand" cells say about the code a test uses (as last saved):
    the grader fails the test for the same reasons (course_utils.rules)."""
    with open(os.path.abspath(notebook_file), encoding="utf-8") as file:
        notebook = json.load(file)
    governed, student, setup = [], [], []
    for cell in notebook.get("cells", []):
        metadata = cell.get("metadata", {})
        nbgrader = metadata.get("nbgrader", {})
        code = _source(cell)
        if cell.get("cell_type") != "code" or metadata.get("course", {}).get("selfcheck"):
            continue
        if nbgrader.get("grade") and not nbgrader.get("solution"):
            if nbgrader.get("grade_id") == grade_id:
                return rules.broken_rules(code, governed, student, setup)
        elif nbgrader.get("solution"):
            student.append((nbgrader.get("grade_id"), code))
            rule = rules.rule_of(metadata, check_names=False)
            if rule is not None:
                names = frozenset(rules.defined_names(code))
                governed.append(rules.GovernedCell(nbgrader.get("grade_id"), rule, names))
        elif nbgrader.get("locked"):
            setup.append(code)
        else:
            student.append((None, code))
    return []


def _add_rule_rows(result: TestResult, notebook_file: str) -> None:
    for message in rule_messages(notebook_file, result.grade_id):
        result.checks += 1
        hint = _("the grader fails this test for the same reason")
        result.rows.append(Row("FAIL", None, _("rule"), message, hint=hint))


# --- running one test cell, a statement at a time ----------------------------------------------------------


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _asserts_something(node: ast.AST, checking_functions: set[str]) -> bool:
    """Does this code contain an `assert`, or a call to an assert_... helper or to a function that asserts?"""
    for child in ast.walk(node):
        if isinstance(child, ast.Assert):
            return True
        if isinstance(child, ast.Call):
            name = _called_name(child)
            if name.startswith("assert") or name in checking_functions:
                return True
    return False


def _is_notebook_code(filename: str) -> bool:
    """Code typed in a notebook cell (Jupyter's kernel files it under ipykernel_<pid>/), not a library's file."""
    return "ipykernel_" in filename or (filename.startswith("<") and not filename.startswith("<frozen"))


def _explain(error: Exception, statement: ast.stmt, code: str, test_file: str) -> tuple[str, str]:
    """(message, hint) for an exception raised by one statement of a test (compiled as test_file)."""
    frames = traceback.extract_tb(error.__traceback__)
    yours = [f for f in frames if _is_notebook_code(f.filename) and f.filename != test_file]
    where = ""
    if yours:
        where = _(" (in {function}, line {line} of its cell)").format(function=yours[-1].name, line=yours[-1].lineno)
    if isinstance(error, NotImplementedError) and yours:
        name = yours[-1].name
        return (
            _("{function} is not written yet (NotImplementedError at line {line} of its cell)").format(
                function=name, line=yours[-1].lineno),
            _("replace `raise NotImplementedError()` in {function} with your code, then run that cell").format(
                function=name),
        )
    if isinstance(error, NameError) and getattr(error, "name", None):
        return f"NameError: {error}", _("run the cell that defines {name} first (Run > Run All Above)").format(
            name=error.name)
    if isinstance(error, AssertionError):
        text = translate_message(str(error))
        if not text and isinstance(statement, ast.Assert):
            text = _("assertion failed: {code}").format(code=ast.get_source_segment(code, statement.test))
        # course_utils.checks puts the hint on its own line
        message, _sep, hint = text.partition("\n" + _("hint: "))
        return message or _("assertion failed"), hint
    text = f": {error}" if str(error) else ""
    return f"{type(error).__name__}{text}{where}", ""


def _first_line(code: str, statement: ast.stmt) -> str:
    lines = (ast.get_source_segment(code, statement) or "").splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= MAX_CODE_CHARS else text[: MAX_CODE_CHARS - 3] + "..."


def run_test(grade_id: str, code: str, namespace: dict) -> TestResult:
    """Run a test cell's public code in namespace; one row per check, or an ERROR row where it stopped."""
    result = TestResult(grade_id)
    try:
        statements = ast.parse(code).body
    except SyntaxError as error:
        message = _("the test cell does not parse: {error}").format(error=error.msg)
        result.rows.append(Row("ERROR", error.lineno, "", message))
        return result
    checking_functions: set[str] = set()
    is_check = []
    for statement in statements:
        defines = isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if defines and _asserts_something(statement, checking_functions):
            checking_functions.add(statement.name)
        is_check.append(not defines and _asserts_something(statement, checking_functions))
    result.checks = sum(is_check)

    filename = f"<public tests of {grade_id}>"
    for index, statement in enumerate(statements):
        compiled = compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec")
        try:
            # The tests' own prints ("... public tests passed") would only repeat the table.
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compiled, namespace)
        except Exception as error:
            message, hint = _explain(error, statement, code, filename)
            row = Row("FAIL" if is_check[index] else "ERROR", statement.lineno, _first_line(code, statement))
            row.message, row.hint = message, hint
            result.rows.append(row)
            if not is_check[index]:
                skipped = sum(is_check[index + 1 :])
                if skipped:
                    row.note = _("(the {count} check(s) after it were not run)").format(count=skipped)
                return result
        else:
            if is_check[index]:
                result.rows.append(Row("PASS", statement.lineno, _first_line(code, statement)))
    return result


def _namespace(caller_globals: dict) -> dict:
    """The namespace your notebook's cells run in: IPython's user namespace, else the caller's globals."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell.user_ns if shell is not None else caller_globals


def _problem(grade_id: str, message: str) -> TestResult:
    return TestResult(grade_id, rows=[Row("ERROR", None, "", message)])


def check(notebook_file: str, grade_id: str, namespace: dict | None = None) -> CheckResult:
    """Run the public tests of test cell `grade_id` of `notebook_file` in your kernel; show each check."""
    namespace = namespace if namespace is not None else _namespace(sys._getframe(1).f_globals)
    try:
        tests = read_test_cells(notebook_file)
    except NotebookProblem as problem:
        return CheckResult(_problem(grade_id, str(problem)))
    if grade_id not in tests:
        return CheckResult(
            _problem(grade_id, _("{notebook} has no test cell {test}; was it deleted? Its tests are graded.").format(
                notebook=notebook_file, test=repr(grade_id)))
        )
    try:
        result = run_test(grade_id, tests[grade_id], namespace)
        _add_rule_rows(result, notebook_file)
        return CheckResult(result)
    except Exception as error:  # a self-check must never stop Run All
        return CheckResult(_problem(grade_id, _("the self-check itself failed: {error}").format(
            error=f"{type(error).__name__}: {error}")))


def check_all(notebook_file: str, namespace: dict | None = None) -> NotebookResult | CheckResult:
    """Run the public tests of every test cell of `notebook_file`; one row per test cell and a total."""
    namespace = namespace if namespace is not None else _namespace(sys._getframe(1).f_globals)
    try:
        tests = read_test_cells(notebook_file)
    except NotebookProblem as problem:
        return CheckResult(_problem(_("all tests"), str(problem)))
    if not tests:
        return CheckResult(_problem(_("all tests"), _("{notebook} has no autograded test cells").format(
            notebook=notebook_file)))
    results = []
    for grade_id, code in tests.items():
        try:
            results.append(run_test(grade_id, code, namespace))
            _add_rule_rows(results[-1], notebook_file)
        except Exception as error:
            results.append(_problem(grade_id, _("the self-check itself failed: {error}").format(
                error=f"{type(error).__name__}: {error}")))
    return NotebookResult(results)
