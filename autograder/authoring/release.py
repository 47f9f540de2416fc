"""`course release`: source/<a>/ -> release/<a>/ (student notebooks) and solutions/<a>/ (posted solutions).

The student version is made by nbgrader's own GenerateAssignment converter, called in-process (no
subprocess, no fresh interpreter per notebook). Everything is built in a scratch folder first and moved
into place at the end, so a failure never leaves a half release behind.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

import course_utils
from autograder.course import Course, CourseError, put_python_scripts_on_path
from autograder.grading import time_limits
from autograder.notebook import cells
from autograder.notebook.source import read_source_notebook

SOLUTION_TIMEOUT_S = 300


@dataclass
class ReleaseReport:
    assignment: str
    notebooks: list[str] = field(default_factory=list)
    release_seconds: float = 0.0
    solution_seconds: float = 0.0
    solutions_up_to_date: list[str] = field(default_factory=list)  # posted solutions kept: nothing changed
    with_solutions: bool = True  # False: release/ only (--no-execute)

    def line(self) -> str:
        """What `course release` prints for this assignment."""
        if not self.with_solutions:
            solutions = ""
        elif len(self.solutions_up_to_date) == len(self.notebooks):
            solutions = "; solutions up to date (not executed again)"
        else:
            solutions = f"; solutions executed in {self.solution_seconds:.1f} s"
        released = f"released {len(self.notebooks)} notebook(s) in {self.release_seconds:.2f} s"
        return f"{self.assignment}: {released}{solutions}"


def solution_notebook(source: NotebookNode) -> NotebookNode:
    """The notebook instructors post: solutions kept, markers removed, hidden tests removed, no outputs."""
    nb = nbformat.from_dict(source)
    for cell in nb.cells:
        kind = cells.role(cell)
        if kind == "solution":
            cell.source = cells.solution_text(cell.source)
        elif kind == "test":
            cell.source = cells.public_test_text(cell.source)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


SELFCHECK_INTRO = """## Self-check

The cell below runs the public tests of every exercise again and lists which pass; the self-check cell
under each test does the same for that exercise, check by check. From a terminal:
`course check {name}`. Hidden tests are not in this notebook: passing every public test is a good sign,
not a guarantee of full marks."""


def _selfcheck_cell(cell_type: str, text: str, cell_id: str) -> NotebookNode:
    """A locked cell marked {"course": {"selfcheck": true}}: intake leaves it out of grading."""
    cell = nbformat.v4.new_code_cell(text) if cell_type == "code" else nbformat.v4.new_markdown_cell(text)
    cell.metadata = nbformat.from_dict({"course": {"selfcheck": True}, "deletable": False, "editable": False})
    cell.id = re.sub(r"[^A-Za-z0-9_-]", "-", cell_id)[:64]  # never random: a second release changes no byte
    return cell


def add_selfcheck_cells(nb: NotebookNode, name: str) -> NotebookNode:
    """After each autograded test cell, a cell that shows its public checks; at the end, the whole notebook's.
Test and solution cells are tagged `raises-exception`, so that Run All reaches every self-check.

    The cells call course_utils.selfcheck, which reads the tests from the notebook file named `name`.
    """
    quoted = json.dumps(name)
    added = []
    for cell in nb.cells:
        added.append(cell)
        if cell.cell_type == "code" and cells.role(cell) in ("test", "solution"):
            # JupyterLab's Run All goes on past these cells when they raise (an unwritten function does),
            # so every self-check below still runs and shows what fails
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")
        if cell.cell_type == "code" and cells.role(cell) == "test":
            code = f"from course_utils.selfcheck import check\ncheck({quoted}, {json.dumps(cells.grade_id(cell))})"
            added.append(_selfcheck_cell("code", code, f"{cell.get('id') or cells.grade_id(cell)}-check"))
    if len(added) == len(nb.cells):
        return nb
    added.append(_selfcheck_cell("markdown", SELFCHECK_INTRO.format(name=name), "selfcheck-intro"))
    code = f"from course_utils.selfcheck import check_all\ncheck_all({quoted})"
    added.append(_selfcheck_cell("code", code, "selfcheck-all"))
    if "id" not in nb.cells[0]:  # notebooks before nbformat 4.5 have no cell ids
        for cell in added:
            cell.pop("id", None)
    nb.cells = added
    return nb


def execute_notebook(nb: NotebookNode, workdir: Path, timeout: int = SOLUTION_TIMEOUT_S) -> NotebookNode:
    from nbclient import NotebookClient
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="kernel-") as sockets:
        # The kernel talks over unix sockets in a private folder, not TCP ports any local user could
        # connect to (ipykernel warns about unencrypted TCP, once per notebook).
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
        client = NotebookClient(
            nb,
            config=ipc,
            timeout=timeout,
            kernel_name="python3",
            record_timing=True,  # read, then removed, by time_limits.measure
            resources={"metadata": {"path": str(workdir)}},
        )
        # One thread per numeric library, as in the grading sandbox: on a busy machine extra threads make
        # numpy and torch many times slower, not faster.
        single_threaded = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        client.execute(env={**os.environ, **single_threaded})
    timing = time_limits.measure(nb)
    nb.metadata.setdefault("course", {})["timing"] = timing.as_metadata()
    return nb


def solutions_digest(course: Course, assignment: str) -> str:
    """What the executed solutions depend on in this repository: the assignment's source folder (files
    that never reach students aside), course_utils and the course's configuration. Equal digests: the
    posted solutions are up to date and are not executed again (their outputs would change, not their
    meaning: timings, last digits)."""
    ignored = list(course.config.CourseDirectory.get("ignore", []))
    folder = course.source_dir / assignment
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and not _ignored(p.relative_to(folder), ignored)]
    files += sorted(Path(course_utils.__file__).parent.glob("*.py"))
    files.append(course.root / "nbgrader_config.py")
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _ignored(relative: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in patterns)


def _up_to_date_solution(path: Path, digest: str) -> NotebookNode | None:
    """The posted solution notebook at `path` when it was executed from sources with this digest."""
    if not path.is_file():
        return None
    try:
        posted = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 -- unreadable: executed again
        return None
    return posted if posted.metadata.get("course", {}).get("solutions_digest") == digest else None


def _generate_student_version(course: Course, assignment: str, scratch: Path) -> Path:
    """Run nbgrader's GenerateAssignment on a copy of the source; return the folder it wrote."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    put_python_scripts_on_path()
    config = copy.deepcopy(course.config)  # never change the course's own settings
    config.CourseDirectory.root = str(scratch)
    config.CourseDirectory.db_url = f"sqlite:///{scratch / 'gradebook.db'}"
    config.CourseDirectory.assignment_id = assignment
    # nbgrader's own --no-db: the gradebook is filled at grading time, so release needs no database.
    config.SaveCells.enabled = False
    config.GenerateAssignment.no_database = True
    shutil.copytree(course.source_dir / assignment, scratch / "source" / assignment)
    coursedir = CourseDirectory(config=config)
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.log.setLevel("ERROR")
    converter.force = True
    try:
        converter.start()
    except Exception as error:
        raise CourseError(f"{course.source_dir / assignment}: nbgrader could not generate it: {error}") from None
    return scratch / "release" / assignment


def _replace_dir(target: Path, new: Path, scratch: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rename(scratch / f"old-{target.parent.name}")
    new.rename(target)


def release(
    course: Course, assignment: str, execute_solutions: bool = True, force_execute: bool = False
) -> ReleaseReport:
    """Write release/<a>/ and (execute_solutions) solutions/<a>/. Solutions are executed only when
    solutions_digest changed since they were (or force_execute): an unchanged course releases the same
    bytes, so a fresh clone's `make main` leaves `git status` clean."""
    source_paths = course.source_notebooks(assignment)
    sources = {path.name: read_source_notebook(path) for path in source_paths}
    report = ReleaseReport(assignment, notebooks=list(sources), with_solutions=execute_solutions)

    work_root = course.root / ".course"
    work_root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root, prefix=f"release-{assignment}-") as tmp:
        scratch = Path(tmp)
        started = time.perf_counter()
        student_dir = _generate_student_version(course, assignment, scratch / "nbgrader")
        for name in sources:
            student = nbformat.read(student_dir / name, as_version=4)
            nbformat.write(add_selfcheck_cells(student, name), student_dir / name)
        report.release_seconds = time.perf_counter() - started

        solutions_dir = scratch / "solutions"
        solutions_dir.mkdir()
        started = time.perf_counter()
        digest = solutions_digest(course, assignment) if execute_solutions else ""
        for name, source in sources.items():
            posted = None if force_execute else _up_to_date_solution(course.solutions_dir / assignment / name, digest)
            if execute_solutions and posted is not None:
                shutil.copy(course.solutions_dir / assignment / name, solutions_dir / name)
                report.solutions_up_to_date.append(name)
                continue
            solution = solution_notebook(source)
            solution.metadata.setdefault("course", {})["solutions_digest"] = digest
            if execute_solutions:
                try:
                    execute_notebook(solution, workdir=scratch / "nbgrader" / "source" / assignment)
                except Exception as error:
                    first_line = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
                    where = course.source_dir / assignment / name
                    raise CourseError(f"{where}: solution failed: {first_line}") from None
            nbformat.write(solution, solutions_dir / name)
        report.solution_seconds = time.perf_counter() - started

        _replace_dir(course.release_dir / assignment, student_dir, scratch)
        if execute_solutions:
            _replace_dir(course.solutions_dir / assignment, solutions_dir, scratch)
    return report
