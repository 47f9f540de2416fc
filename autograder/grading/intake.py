"""Intake: read a submission safely and decide what will run, in which order, taken from where.

The source notebook is the authority. Test and read-only cells are always the source's; the student
only contributes the contents of solution cells, written answers and cells they added. Cells are
matched by grade_id; anything odd (deleted, duplicated or retyped cells, symlinks, oversize files) is
recorded as a finding, never a crash.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.i18n import _
from autograder.notebook import cells, nbnodes
from course_utils import rules

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_CELL_CHARS = 1_000_000
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_FILES = 500


@dataclass
class PlanCell:
    kind: str  # "student" (runs in the student process), "readonly" (both sides), "test" (judge), "answer"
    code: str
    grade_id: str | None = None
    points: float = 0.0
    gpu: bool = False
    cell: NotebookNode | None = None  # the cell as it will appear in the autograded notebook


@dataclass
class NotebookPlan:
    name: str
    cells: list[PlanCell] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    problem: str | None = None  # set when the notebook cannot be run at all
    governed: list[rules.GovernedCell] = field(default_factory=list)  # the source's rules ("by hand" cells)
    # What the source's solution cells define (functions, classes, globals): the names a test may patch or
    # delete for the student (Judge.run_test carries that out in the student process)
    solution_names: set[str] = field(default_factory=set)


@dataclass
class Submission:
    student: str
    folder: Path | None
    notebooks: dict[str, NotebookNode | None]
    problems: dict[str, str]
    findings: list[str]
    files: list[Path]  # regular files safe to copy into the sandbox


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def read_notebook(path: Path) -> tuple[NotebookNode | None, str | None]:
    """(notebook, None) or (None, one-line reason)."""
    if path.is_symlink():
        return None, _("{name} is a symbolic link; submit the notebook file itself").format(name=path.name)
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return None, _("{name} is {size:.1f} MiB, over the {limit} MiB limit").format(
            name=path.name, size=size / 2**20, limit=MAX_NOTEBOOK_BYTES // 2**20
        )
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, _("{name} is not a notebook (invalid JSON: {error})").format(
            name=path.name, error=_one_line(error)
        )
    if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
        return None, _("{name} is not a notebook (no list of cells)").format(name=path.name)
    major = data.get("nbformat")
    if major != 4:
        return None, _("{name} is nbformat {major}; open and save it in Jupyter to get nbformat 4").format(
            name=path.name, major=major
        )
    try:
        nb = nbformat.from_dict(data)
        nbformat.validate(nb, relax_add_props=True)
    except Exception as error:  # nbformat's validation errors are of several kinds
        return None, _("{name} is not a valid notebook: {error}").format(name=path.name, error=_one_line(error))
    return nb, None


def read_submission(folder: Path, student: str, notebook_names: list[str]) -> Submission:
    findings: list[str] = []
    notebooks: dict[str, NotebookNode | None] = {}
    problems: dict[str, str] = {}
    files: list[Path] = []
    if folder.is_symlink() or not folder.is_dir():
        if folder.is_symlink():
            why = _("the submission folder is a symbolic link")
        else:
            why = (
                _("the submission folder is not a folder") if folder.exists() else _("the submission folder is missing")
            )
        for name in notebook_names:
            notebooks[name], problems[name] = None, why
        return Submission(student, None, notebooks, problems, findings, files)

    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if ".ipynb_checkpoints" in relative.parts:
            continue
        if path.is_symlink():
            findings.append(_("{file}: symbolic link ignored").format(file=relative))
        elif path.is_file() and not any(p.is_symlink() for p in path.parents if folder in p.parents):
            if path.stat().st_size > MAX_FILE_BYTES:
                findings.append(
                    _("{file}: over {limit} MB, ignored").format(file=relative, limit=MAX_FILE_BYTES // 2**20)
                )
            elif len(files) >= MAX_FILES:
                findings.append(_("{file}: more than {limit} files, ignored").format(file=relative, limit=MAX_FILES))
            else:
                files.append(path)

    for name in notebook_names:
        path = folder / name
        if not path.exists() and not path.is_symlink():
            present = sorted(p.name for p in folder.glob("*.ipynb"))
            notebooks[name] = None
            problems[name] = (
                _("{name} was not submitted (found: {found})").format(name=name, found=", ".join(present))
                if present
                else _("{name} was not submitted").format(name=name)
            )
            continue
        notebooks[name], problem = read_notebook(path)
        if problem:
            problems[name] = problem
    if not any(notebooks.values()) and not problems:
        problems = {name: _("no notebook submitted") for name in notebook_names}
    return Submission(student, folder, notebooks, problems, findings, files)


def _student_cells_by_id(student: NotebookNode, findings: list[str]) -> dict[str, NotebookNode]:
    by_id: dict[str, NotebookNode] = {}
    for cell in student.cells:
        gid = cells.grade_id(cell)
        if gid is None:
            continue
        if gid in by_id:
            findings.append(_("cell {cell} appears more than once; the first copy was graded").format(cell=repr(gid)))
            continue
        by_id[gid] = cell
    return by_id


def _source_text(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def build_plan(
    name: str, source: NotebookNode, student: NotebookNode | None, problem: str | None = None
) -> NotebookPlan:
    """The cells to run for one notebook, in the source's order, with the student's own cells in place."""
    plan = NotebookPlan(name, problem=problem)
    student_by_id = _student_cells_by_id(student, plan.findings) if student is not None else {}
    source_ids = {cells.grade_id(c) for c in source.cells if cells.role(c) != "free"}

    # The student's own cells follow the tracked cell they came after in the student's notebook.
    added_after: dict[str | None, list[NotebookNode]] = defaultdict(list)
    previous = None
    for cell in student.cells if student is not None else []:
        gid = cells.grade_id(cell)
        if gid in source_ids:
            if student_by_id.get(gid) is cell:
                previous = gid
            continue
        # Self-check cells (added by `course release`) would only run the public tests again: not run. A
        # student who puts the marker on a cell of their own gets that cell skipped, nothing more.
        if cell.cell_type == "code" and not cells.is_selfcheck(cell):
            added_after[previous].append(cell)

    def add_student_cells(after: str | None) -> None:
        for cell in added_after.get(after, []):
            code = _source_text(cell)
            if len(code) > MAX_CELL_CHARS:
                plan.findings.append(
                    _("a cell of {size} characters was not run (limit {limit})").format(
                        size=len(code), limit=MAX_CELL_CHARS
                    )
                )
                code = ""
            plan.cells.append(PlanCell("student", code, cell=_code_cell(code, cell.metadata)))

    add_student_cells(None)
    for source_cell in source.cells:
        gid, role = cells.grade_id(source_cell), cells.role(source_cell)
        if source_cell.cell_type == "code" and role == "test":
            plan.cells.append(
                PlanCell(
                    "test",
                    source_cell.source,
                    gid,
                    cells.points(source_cell),
                    cells.is_gpu(source_cell),
                    _public_test_cell(source_cell),
                )
            )
        elif source_cell.cell_type == "code" and role == "readonly":
            plan.cells.append(
                PlanCell("readonly", source_cell.source, gid, cell=_code_cell(source_cell.source, source_cell.metadata))
            )
        elif role == "solution":
            plan.cells.append(_solution_plan_cell(source_cell, student_by_id.get(gid), student, plan.findings))
            if source_cell.cell_type == "code":
                plan.solution_names |= rules.defined_names(source_cell.source)
            rule = rules.rule_of(source_cell.metadata, check_names=False)
            if rule is not None and source_cell.cell_type == "code":
                names = frozenset(rules.defined_names(source_cell.source))
                plan.governed.append(rules.GovernedCell(gid, rule, names))
        if gid in source_ids:
            add_student_cells(gid)
    return plan


def _code_cell(code: str, metadata) -> NotebookNode:
    return nbnodes.code_cell(code, json.loads(json.dumps(dict(metadata))))


def _public_test_cell(source_cell: NotebookNode) -> NotebookNode:
    return _code_cell(cells.public_test_text(source_cell.source), source_cell.metadata)


def _solution_plan_cell(source_cell, student_cell, student, findings: list[str]) -> PlanCell:
    gid = cells.grade_id(source_cell)
    graded = cells.is_graded(source_cell)
    if source_cell.cell_type == "markdown":
        text = _source_text(student_cell) if student_cell is not None else ""
        if student is not None and student_cell is None:
            findings.append(_("answer cell {cell} was deleted").format(cell=repr(gid)))
        cell = nbnodes.markdown_cell(text[:MAX_CELL_CHARS], json.loads(json.dumps(dict(source_cell.metadata))))
        return PlanCell("answer", text, gid, cells.points(source_cell) if graded else 0.0, cell=cell)
    code = ""
    if student_cell is None:
        if student is not None:
            findings.append(_("solution cell {cell} was deleted; nothing ran in its place").format(cell=repr(gid)))
    elif student_cell.cell_type != "code":
        findings.append(
            _("solution cell {cell} was changed to {kind}; its text was not run").format(
                cell=repr(gid), kind=student_cell.cell_type
            )
        )
    else:
        code = _source_text(student_cell)
        if len(code) > MAX_CELL_CHARS:
            findings.append(
                _("solution cell {cell} has {size} characters (limit {limit}); not run").format(
                    cell=repr(gid), size=len(code), limit=MAX_CELL_CHARS
                )
            )
            code = ""
    return PlanCell("student", code, gid, cell=_code_cell(code, source_cell.metadata))
