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
from autograder.authoring import translation
from autograder.course import Course, CourseError, put_python_scripts_on_path
from autograder.grading import time_limits
from autograder.i18n import N_, gettext_in
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
    language: str = translation.SOURCE_LANGUAGE
    untranslated: list[str] = field(default_factory=list)  # "<notebook>: <cell id> (why)", left in English

    def line(self) -> str:
        """What `course release` prints for this assignment."""
        if not self.with_solutions:
            solutions = ""
        elif len(self.solutions_up_to_date) == len(self.notebooks):
            solutions = "; solutions up to date (not executed again)"
        else:
            solutions = f"; solutions executed in {self.solution_seconds:.1f} s"
        released = f"released {len(self.notebooks)} notebook(s) in {self.release_seconds:.2f} s"
        language = f" in {translation.LANGUAGES[self.language]} ({self.language})"
        english = ""
        if self.untranslated:
            english = (f"; {len(self.untranslated)} cell(s) left in English (not translated, or the English changed): "
                       f"`course translate {self.assignment} --lang {self.language}` lists them")
        return f"{self.assignment}: {released}{language}{solutions}{english}"


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


SELFCHECK_INTRO = N_("""## Self-check

The cell below runs the public tests of every exercise again and lists which pass; the self-check cell
under each test does the same for that exercise, check by check. From a terminal:
`course check {name}`. Hidden tests are not in this notebook: passing every public test is a good sign,
not a guarantee of full marks.""")

LANGUAGE_CELL = N_("# This notebook's messages and hints are in English.")


def _selfcheck_cell(cell_type: str, text: str, cell_id: str) -> NotebookNode:
    """A locked cell marked {"course": {"selfcheck": true}}: intake leaves it out of grading."""
    cell = nbformat.v4.new_code_cell(text) if cell_type == "code" else nbformat.v4.new_markdown_cell(text)
    cell.metadata = nbformat.from_dict({"course": {"selfcheck": True}, "deletable": False, "editable": False})
    cell.id = re.sub(r"[^A-Za-z0-9_-]", "-", cell_id)[:64]  # never random: a second release changes no byte
    return cell


def add_selfcheck_cells(nb: NotebookNode, name: str, language: str = translation.SOURCE_LANGUAGE) -> NotebookNode:
    """After each autograded test cell, a cell that shows its public checks; at the end, the whole notebook's.
Test and solution cells are tagged `raises-exception`, so that Run All reaches every self-check.

    The cells call course_utils.selfcheck, which reads the tests from the notebook file named `name`.
    A notebook in another language than English starts with a cell that switches course_utils to it.
    """
    quoted = json.dumps(name)
    added = []
    if language != translation.SOURCE_LANGUAGE:
        code = (f"{gettext_in(language, LANGUAGE_CELL)}\nfrom course_utils import i18n\n"
                f"i18n.use_notebook({quoted})")
        added.append(_selfcheck_cell("code", code, "course-language"))
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
    if len(added) == len(nb.cells) + (language != translation.SOURCE_LANGUAGE):
        return nb
    intro = gettext_in(language, SELFCHECK_INTRO).format(name=name)
    added.append(_selfcheck_cell("markdown", intro, "selfcheck-intro"))
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
    ignored.append(translation.TRANSLATIONS_FOLDER)  # prose only: the code (and so the outputs) is the same
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


def _generate_student_version(
    course: Course, assignment: str, scratch: Path, sources: dict[str, NotebookNode], language: str
) -> Path:
    """Run nbgrader's GenerateAssignment on a copy of the source (its notebooks: `sources`, translated to
    `language`; its translation files left out); return the folder it wrote."""
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
    if language != translation.SOURCE_LANGUAGE:  # what replaces a solution, in the student's language
        stub = gettext_in(language, "# YOUR CODE HERE")
        config.ClearSolutions.code_stub = {"python": stub + "\nraise NotImplementedError()"}
        config.ClearSolutions.text_stub = gettext_in(language, "YOUR ANSWER HERE")
    # translation files hold solutions and hidden tests: never copied towards a release
    shutil.copytree(course.source_dir / assignment, scratch / "source" / assignment,
                    ignore=shutil.ignore_patterns(translation.TRANSLATIONS_FOLDER))
    for name, notebook in sources.items():
        nbformat.write(notebook, scratch / "source" / assignment / name)
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


def _translated_sources(
    course: Course, assignment: str, sources: dict[str, NotebookNode], language: str, report: ReleaseReport
) -> tuple[dict[str, NotebookNode], dict[str, list[tuple[str, str]]], str]:
    """The source notebooks in `language`, the test messages each notebook's students may read (public
    tests only), and a digest of the translation files. A cell without a usable translation stays English
    (listed in report.untranslated); a missing or malformed translation file is a CourseError."""
    if language == translation.SOURCE_LANGUAGE:
        return sources, {name: [] for name in sources}, ""
    translated, messages, digest = {}, {}, hashlib.sha256()
    for name, source in sources.items():
        path = translation.translation_path(course.source_dir / assignment, name, language)
        if not path.is_file():
            raise CourseError(f"{path}: no {translation.LANGUAGES[language]} translation of {name}; "
                              f"`course translate {assignment} --lang {language}` starts one")
        found = translation.load_translation(path, source, name, language)
        translated[name], problems = translation.translated_notebook(source, found)
        report.untranslated += [f"{name}: {problem.line()}" for problem in problems]
        public = set(translation.notebook_message_templates(source, public_only=True))
        messages[name] = [(en, text) for en, text in found.messages if en in public and text]
        digest.update(path.read_bytes())
    return translated, messages, digest.hexdigest()[:16]


def _translated_solution(english: NotebookNode, translated_source: NotebookNode, digest: str) -> NotebookNode:
    """The posted solution in another language: the English solution's cells and outputs, with the
    translated text of each cell (same cells, same ids: a translation changes only prose and comments)."""
    solution = nbformat.from_dict(english)
    texts = solution_notebook(translated_source)
    for cell, text in zip(solution.cells, texts.cells, strict=True):
        cell.source = text.source
    solution.metadata.setdefault("course", {})["solutions_digest"] = digest
    return solution


def _english_solution(course: Course, assignment: str, name: str, source: NotebookNode, scratch: Path) -> NotebookNode:
    """The executed English solution: the posted one when it is up to date, else executed now."""
    digest = solutions_digest(course, assignment)
    posted = _up_to_date_solution(course.solutions_dir_for(translation.SOURCE_LANGUAGE) / assignment / name, digest)
    if posted is not None:
        return posted
    solution = solution_notebook(source)
    solution.metadata.setdefault("course", {})["solutions_digest"] = digest
    _execute_solution(course, assignment, name, solution, scratch)
    return solution


def _execute_solution(course: Course, assignment: str, name: str, solution: NotebookNode, scratch: Path) -> None:
    try:
        execute_notebook(solution, workdir=scratch / "nbgrader" / "source" / assignment)
    except Exception as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        raise CourseError(f"{course.source_dir / assignment / name}: solution failed: {first_line}") from None


def release(
    course: Course, assignment: str, execute_solutions: bool = True, force_execute: bool = False,
    language: str | None = None,
) -> ReleaseReport:
    """Write release/<a>/ and (execute_solutions) solutions/<a>/, in `language` (default: the course's;
    another language goes to release-<lang>/ and solutions-<lang>/). Solutions are executed only when
    solutions_digest changed since they were (or force_execute): an unchanged course releases the same
    bytes, so a fresh clone's `make main` leaves `git status` clean. A translated solution is the English
    one (executed) with its cells' text translated: the code is the same, so are the outputs."""
    language = translation.check_language(language or course.language)
    source_paths = course.source_notebooks(assignment)
    english = {path.name: read_source_notebook(path) for path in source_paths}
    report = ReleaseReport(assignment, notebooks=list(english), with_solutions=execute_solutions, language=language)
    sources, messages, translation_digest = _translated_sources(course, assignment, english, language, report)
    release_dir, solutions_dir_final = course.release_dir_for(language), course.solutions_dir_for(language)

    work_root = course.root / ".course"
    work_root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root, prefix=f"release-{assignment}-") as tmp:
        scratch = Path(tmp)
        started = time.perf_counter()
        student_dir = _generate_student_version(course, assignment, scratch / "nbgrader", sources, language)
        for name in sources:
            student = nbformat.read(student_dir / name, as_version=4)
            if language != translation.SOURCE_LANGUAGE:
                student.metadata.setdefault("course", {}).update(language=language, messages=messages[name])
            nbformat.write(add_selfcheck_cells(student, name, language), student_dir / name)
        report.release_seconds = time.perf_counter() - started

        solutions_dir = scratch / "solutions"
        solutions_dir.mkdir()
        started = time.perf_counter()
        digest = solutions_digest(course, assignment) + translation_digest if execute_solutions else ""
        for name, source in sources.items():
            posted = None if force_execute else _up_to_date_solution(solutions_dir_final / assignment / name, digest)
            if execute_solutions and posted is not None:
                shutil.copy(solutions_dir_final / assignment / name, solutions_dir / name)
                report.solutions_up_to_date.append(name)
                continue
            if execute_solutions and language != translation.SOURCE_LANGUAGE:
                executed = _english_solution(course, assignment, name, english[name], scratch)
                solution = _translated_solution(executed, source, digest)
                solution.metadata["course"].update(language=language, messages=messages[name])
            else:
                solution = solution_notebook(source)
                solution.metadata.setdefault("course", {})["solutions_digest"] = digest
                if execute_solutions:
                    _execute_solution(course, assignment, name, solution, scratch)
            nbformat.write(solution, solutions_dir / name)
        report.solution_seconds = time.perf_counter() - started

        _replace_dir(release_dir / assignment, student_dir, scratch)
        if execute_solutions:
            _replace_dir(solutions_dir_final / assignment, solutions_dir, scratch)
    return report
