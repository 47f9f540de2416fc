"""`course grade`: grade every submission of an assignment, one sandboxed student process per notebook.

For each notebook the plan (intake) is walked in order: student cells run in the student process,
read-only cells run there and in the judge, test cells run in the judge only. Every outcome, including
crashes, timeouts and unreadable files, becomes a recorded result.
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder import i18n as autograder_i18n
from autograder.course import Course
from autograder.grading import intake, time_limits
from autograder.grading.judge import Judge, JudgeCache, TestOutcome
from autograder.grading.parts import Part
from autograder.grading.results import WAITING_FOR_GPU, CellResult, SubmissionResult
from autograder.grading.student_process import ColdStudentProcess, StudentGone, StudentProcess
from autograder.i18n import _
from autograder.notebook import cells, nbnodes
from autograder.notebook.source import read_source_notebook
from autograder.sandbox.confine import Limits
from course_utils import i18n as course_utils_i18n
from course_utils import rules

Launcher = Callable[[Path], StudentProcess]


@dataclass(frozen=True)
class Timeouts:
    cell_s: float = 120.0
    notebook_s: float = 900.0
    basis: str = "fixed"  # how they were decided (time_limits.Limits.basis)

    @classmethod
    def for_assignment(cls, course: Course, source: AssignmentSource, gpu: bool = False) -> Timeouts:
        """Limits derived from the posted solutions' measured run time (time_limits.py): the slowest cell
        and the longest notebook of the assignment. gpu: graded on a CUDA runner, on the GPU budget."""
        timings = []
        for name in source.notebooks:
            path = course.solutions_dir / source.name / name
            try:
                timings.append(time_limits.stored_timing(nbformat.read(path, as_version=4)))
            except (OSError, ValueError):
                timings.append(None)
        timing = None
        if timings and all(timings):
            timing = time_limits.Timing(max(t.slowest_cell_s for t in timings), max(t.total_s for t in timings))
        limits = time_limits.derive(course.config, source.name, timing, gpu=gpu)
        return cls(limits.cell_s, limits.notebook_s, limits.basis)


PRELOADABLE = {"numpy", "torch", "sklearn", "scipy", "matplotlib", "gymnasium", "course_utils", "pandas"}
# Modules that a first use imports late, with the student code that needs them: torch.optim's first step
# imports torch._dynamo (0.8 s), in every student process that trains unless its template has it already.
PRELOAD_ALONG = {"torch": ("torch._dynamo", re.compile(r"\boptim\b"))}


def imported_modules(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@dataclass
class AssignmentSource:
    """What the judge knows about an assignment: the source notebooks and the release's data files."""

    name: str
    notebooks: dict[str, NotebookNode]
    data_dir: Path | None  # release/<a>/ (data files students get), copied into every sandbox
    language: str = "en"  # what failures are written in (the course's language); never changes a score
    messages: tuple[tuple[str, str], ...] = ()  # the tests' messages and their translations (all, hidden too)

    def _code_cells(self):
        return [cell for nb in self.notebooks.values() for cell in nb.cells if cell.cell_type == "code"]

    def heavy_imports(self) -> list[str]:
        """The big modules the notebooks import: what a cold student process imports while it starts."""
        found = set().union(*(imported_modules(cell.source) for cell in self._code_cells()))
        return sorted(name for name in found if name.split(".")[0] in PRELOADABLE)

    def _with_along(self, students_only: bool) -> list[str]:
        wanted = set(self.heavy_imports())
        student_code = "\n".join(c.source for c in self._code_cells() if cells.role(c) == "solution")
        for root in {name.split(".")[0] for name in wanted}:
            if root in PRELOAD_ALONG:
                module, needed_by = PRELOAD_ALONG[root]
                if not students_only or needed_by.search(student_code):
                    wanted.add(module)
        return sorted(wanted)

    def template_imports(self) -> list[str]:
        """What a warm template imports once for all its students: heavy_imports, and the late imports
        (PRELOAD_ALONG) the students' code will need."""
        return self._with_along(students_only=True)

    def judge_imports(self) -> list[str]:
        """What the judge imports before grading: heavy_imports and every late import they bring."""
        return self._with_along(students_only=False)

    @classmethod
    def load(cls, course: Course, assignment: str) -> AssignmentSource:
        paths = course.source_notebooks(assignment)
        notebooks = {p.name: read_source_notebook(p, check_metadata=False) for p in paths}
        release = course.release_dir / assignment
        language, messages = course.language, []
        if language != autograder_i18n.SOURCE_LANGUAGE:  # (a cold `course grade-one` in English imports none of it)
            from autograder.authoring.translation import check_language, load_translation, translation_path

            check_language(language)
            for path in paths:
                found = translation_path(path.parent, path.name, language)
                if found.is_file():
                    messages += load_translation(found, notebooks[path.name], path.name, language).messages
        return cls(assignment, notebooks, release if release.is_dir() else None, language, tuple(messages))

    def speak(self) -> None:
        """Failures from now on in this assignment's language (this process: the judge's)."""
        autograder_i18n.use(self.language)
        course_utils_i18n.use(self.language, self.messages)


def _outputs(result: dict) -> list[NotebookNode]:
    outputs = []
    for name in ("stdout", "stderr"):
        if result.get(name):
            outputs.append(nbnodes.stream(name, result[name]))
    if result.get("result") is not None:
        outputs.append(nbnodes.execute_result(result["result"]))
    error = result.get("error")
    if error:
        outputs.append(
            nbnodes.error(
                str(error.get("type", "Error")),
                str(error.get("message", "")),
                str(error.get("traceback", "")).splitlines(),
            )
        )
    return outputs


def _verdict_output(result: CellResult) -> list[NotebookNode]:
    outputs = []
    if result.output:
        outputs.append(nbnodes.stream("stdout", result.output))
    if result.message:
        outputs.append(
            nbnodes.error(
                "TestFailed",
                result.public_message,
                [f"{result.grade_id}: {result.score:g}/{result.max_points:g} points", result.public_message],
            )
        )
    else:
        outputs.append(
            nbnodes.stream("stdout", f"{result.grade_id}: passed, {result.score:g}/{result.max_points:g} points\n")
        )
    return outputs


def _pending_result(notebook: str, item: intake.PlanCell) -> CellResult:
    """A GPU test the CPU part leaves to a CUDA runner, whether or not the notebook could run."""
    has_hidden = cells.BEGIN_HIDDEN in item.code
    return CellResult(notebook, item.grade_id, item.points, None, WAITING_FOR_GPU, has_hidden=has_hidden, gpu=True,
                      pending=True)  # fmt: skip


def _pending_output(item: intake.PlanCell) -> list[NotebookNode]:
    text = f"{item.grade_id}: {WAITING_FOR_GPU} ({item.points:g} points, graded on a CUDA runner)\n"
    return [nbnodes.stream("stdout", text)]


def _stage_inputs(source: AssignmentSource, files: list[Path], folder: Path | None, target: Path) -> None:
    """The student process's starting files: the release's data files, then the submission's files."""
    target.mkdir(parents=True)
    if source.data_dir is not None:
        for path in source.data_dir.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb":
                destination = target / path.relative_to(source.data_dir)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
    for path in files:
        destination = target / path.relative_to(folder)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)


def grade_notebook(
    plan: intake.NotebookPlan,
    inputs: Path,
    timeouts: Timeouts,
    launcher: Launcher,
    result: SubmissionResult,
    cache: JudgeCache | None = None,
    part: Part = Part.ALL,
    stop_after_loss: bool = False,
) -> NotebookNode:
    """Run one notebook's plan; append its CellResults to `result`; return the autograded notebook.
    `part` chooses which tests are judged (parts.Part). stop_after_loss: end the student process at the
    first test that loses points, so later cells cost nothing (validation only needs to know a seeded
    bug is caught)."""
    autograded = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    )
    if plan.problem:
        for item in plan.cells:
            if item.kind == "test" and part.leaves_pending(item.gpu):
                result.cells.append(_pending_result(plan.name, item))
            elif item.kind == "test" and part.judges(item.gpu):
                result.cells.append(
                    CellResult(
                        plan.name,
                        item.grade_id,
                        item.points,
                        0.0,
                        _("not graded: {reason}").format(reason=plan.problem),
                        has_hidden=cells.BEGIN_HIDDEN in item.code,
                        gpu=item.gpu,
                    )
                )
            autograded.cells.append(item.cell)
        return autograded

    started = time.monotonic()
    student_cells: list[tuple[str | None, str]] = []  # what the student's code was, up to here (for rules)
    setup_cells: list[str] = []
    with launcher(inputs) as process:
        result.isolation = process.isolation
        judge = Judge(process, cache, frozenset(plan.solution_names))
        for position, item in enumerate(plan.cells, start=1):
            cell = item.cell
            autograded.cells.append(cell)
            if item.kind == "student":
                student_cells.append((item.grade_id, item.code))
            elif item.kind == "readonly":
                setup_cells.append(item.code)
            left = timeouts.notebook_s - (time.monotonic() - started)
            if left <= 0 and process.gone_reason is None:
                process.kill(f"the notebook's time limit of {timeouts.notebook_s:g} s was used up")
            if item.kind in ("student", "readonly"):
                if item.code.strip() and process.gone_reason is None:
                    try:
                        label = f"cell {item.grade_id}" if item.grade_id else f"your added cell {position}"
                        answer = process.run_cell(item.code, min(timeouts.cell_s, max(left, 1)), label)
                        cell.outputs = _outputs(answer)
                    except StudentGone as gone:
                        cell.outputs = _outputs({"error": {"type": "StudentProcessEnded", "message": str(gone)}})
                        result.problems.append(f"{plan.name}: {gone}")
                if item.kind == "readonly":
                    judge.run_readonly(item.code, item.grade_id)
            elif item.kind == "test" and part.leaves_pending(item.gpu):
                result.cells.append(_pending_result(plan.name, item))
                cell.outputs = _pending_output(item)
            elif item.kind == "test" and part.judges(item.gpu):
                outcome = judge.run_test(item.code, item.grade_id, item.points, min(timeouts.cell_s, max(left, 1)))
                broken = rules.broken_rules(item.code, plan.governed, student_cells, setup_cells)
                if broken:  # the test still ran: later tests may use what it defines
                    outcome = TestOutcome(0.0, "; ".join(broken), outcome.output)
                cell_result = CellResult(
                    plan.name,
                    item.grade_id,
                    item.points,
                    outcome.score,
                    outcome.message,
                    outcome.output,
                    cells.BEGIN_HIDDEN in item.code,
                    outcome.hidden_failed,
                    item.gpu,
                )
                result.cells.append(cell_result)
                cell.outputs = _verdict_output(cell_result)
                if stop_after_loss and outcome.score < item.points and process.gone_reason is None:
                    process.kill(f"stopped after {item.grade_id}, the first test that lost points")
    return autograded


def _manual_results(name: str, source: NotebookNode) -> list[CellResult]:
    return [
        CellResult(name, cells.grade_id(cell), cells.points(cell), None, _("needs manual grading"))
        for cell in source.cells
        if cells.role(cell) == "solution" and cells.is_graded(cell)
    ]


def grade_submission(
    source: AssignmentSource,
    folder: Path,
    student: str,
    timeouts: Timeouts = Timeouts(),
    limits: Limits = Limits(),
    slot: int = 0,
    launcher: Launcher | None = None,
    cache: JudgeCache | None = None,
    part: Part = Part.ALL,
    stop_after_loss: bool = False,
) -> SubmissionResult:
    """Grade one submission folder. `launcher` starts the student process (default: a cold sandbox);
    `part` chooses which tests are judged (parts.Part)."""
    part = Part(part)
    launcher = launcher or (lambda inputs: ColdStudentProcess(inputs, limits, slot, source.heavy_imports()))
    started = time.monotonic()
    result = SubmissionResult(student, source.name)
    source.speak()
    submission = intake.read_submission(folder, student, list(source.notebooks))
    result.findings.extend(submission.findings)
    with tempfile.TemporaryDirectory(prefix="inputs-") as tmp:
        inputs = Path(tmp) / "files"
        _stage_inputs(source, submission.files, submission.folder, inputs)
        for name, source_nb in source.notebooks.items():
            problem = submission.problems.get(name)
            if problem:
                result.problems.append(f"{name}: {problem}")
            plan = intake.build_plan(name, source_nb, submission.notebooks.get(name), problem)
            result.findings.extend(f"{name}: {finding}" for finding in plan.findings)
            result.autograded[name] = grade_notebook(
                plan, inputs, timeouts, launcher, result, cache, part, stop_after_loss
            )
            if part.records_manual_cells:
                result.cells.extend(_manual_results(name, source_nb))
    result.seconds = time.monotonic() - started
    return result


def submissions(course: Course, assignment: str) -> list[tuple[str, Path]]:
    root = course.submitted_dir
    if not root.is_dir():
        return []
    found = []
    for student_dir in sorted(root.iterdir()):
        if student_dir.is_dir() and not student_dir.name.startswith("."):
            folder = student_dir / assignment
            if folder.exists() or folder.is_symlink():
                found.append((student_dir.name, folder))
    return found
