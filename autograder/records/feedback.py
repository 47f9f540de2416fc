"""Per-student HTML feedback: feedback/<student>/<assignment>/feedback.html.

One self-contained page (inline CSS, no scripts, no external URLs) per submission: the score, one
table per notebook with each test's verdict and its message, the problems and findings of intake and
grading, and the questions a person still has to grade. Everything that came from a submission
(messages, outputs, student names) is escaped.

Visibility: before the grades are published a test that failed inside its hidden block shows only
`CellResult.public_message`, so hidden tests' content never reaches a student early; with
`published=True` the full message is shown.
"""

from __future__ import annotations

from pathlib import Path

from autograder.course import Course
from autograder.grading.results import WAITING_FOR_GPU, CellResult, SubmissionResult
from autograder.i18n import gettext_in, translations
from autograder.records.html import render
from autograder.records.late import Lateness, LatePolicy, lateness, policy


def feedback_dir(course: Course) -> Path:
    return course.root / course.config.CourseDirectory.get("feedback_directory", "feedback")


def is_waiting_for_gpu(cell: CellResult) -> bool:
    """A GPU test not run yet: the batch marks it pending until a CUDA runner has graded it."""
    return bool(getattr(cell, "pending", False)) or cell.message.startswith("pending:")


def _verdict(cell: CellResult, language: str) -> tuple[str, str]:
    """(css class, word) for one cell."""
    if is_waiting_for_gpu(cell):
        return "pending", gettext_in(language, WAITING_FOR_GPU)
    if cell.manual:
        return "pending", gettext_in(language, "to be graded by a person")
    if cell.score >= cell.max_points:
        return "passed", gettext_in(language, "passed")
    if cell.score > 0:
        return "partial", gettext_in(language, "partial credit")
    return "failed", gettext_in(language, "failed")


def _message(cell: CellResult, published: bool) -> str:
    if is_waiting_for_gpu(cell) or cell.manual:
        return ""
    return cell.message if published else cell.public_message


def _score_text(cell: CellResult) -> str:
    if cell.manual or is_waiting_for_gpu(cell):
        return f"\u2013 / {cell.max_points:g}"
    return f"{cell.score:g} / {cell.max_points:g}"


def _row(cell: CellResult, published: bool, language: str) -> dict:
    css, word = _verdict(cell, language)
    output = cell.output if cell.output and not cell.manual else ""
    return {"grade_id": cell.grade_id, "gpu": cell.gpu, "points": _score_text(cell), "css": css, "word": word,
            "message": _message(cell, published), "output": output}  # fmt: skip


def _for_notebook(lines: list[str], notebook: str) -> list[str]:
    prefix = f"{notebook}: "
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def render_feedback(
    result: SubmissionResult, published: bool, late: Lateness | None = None, late_policy: LatePolicy | str = "",
    language: str = "en",
) -> str:
    """The page in `language` (the course's); messages are in the language the submission was graded in.
    late_policy: the course's LatePolicy (its words follow `language`) or already its description."""
    speak = translations(language).gettext
    if isinstance(late_policy, LatePolicy):
        late_policy = late_policy.describe(speak)
    names = list(dict.fromkeys(cell.notebook for cell in result.cells))
    notebooks = [
        {"name": name, "rows": [_row(cell, published, language) for cell in result.cells if cell.notebook == name],
         "problems": _for_notebook(result.problems, name), "findings": _for_notebook(result.findings, name)}
        for name in names
    ]  # fmt: skip
    elsewhere = [line for line in result.problems if not any(line.startswith(f"{nb}: ") for nb in names)]
    other_notes = [line for line in result.findings if not any(line.startswith(f"{nb}: ") for nb in names)]
    manual_pending = sum(cell.max_points for cell in result.cells if cell.manual and not is_waiting_for_gpu(cell))
    return render(
        "feedback.html.j2",
        language,
        title=gettext_in(language, "{assignment}: feedback for {student}").format(
            assignment=result.assignment, student=result.student),
        score=f"{result.score:g} / {result.auto_max:g}",
        late=late.describe(speak) if late and late.multiplier < 1 else "",
        late_penalty=f"{late.penalty(result.score):g}" if late else "",
        late_score=f"{result.score - late.penalty(result.score):g}" if late else "",
        late_policy=late_policy,
        late_problem=speak(late.problem) if late and late.problem else "",
        manual_pending=f"{manual_pending:g}" if manual_pending else "",
        gpu_pending=sum(is_waiting_for_gpu(cell) for cell in result.cells),
        waiting_for_gpu=gettext_in(language, WAITING_FOR_GPU),
        hidden_note=not published and any(cell.has_hidden for cell in result.cells),
        notebooks=notebooks,
        problems=elsewhere,
        findings=other_notes,
    )


def write_feedback(
    course: Course, result: SubmissionResult, published: bool = False, late: Lateness | None = None
) -> Path:
    """Write feedback/<student>/<assignment>/feedback.html and return its path."""
    for name in (result.student, result.assignment):
        if name in ("", ".", "..") or "/" in name or "\\" in name:
            raise ValueError(f"refusing to write feedback for the path component {name!r}")
    folder = feedback_dir(course) / result.student / result.assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feedback.html"
    page = render_feedback(result, published, late, policy(course), course.language)
    path.write_text(page, encoding="utf-8")
    return path


def write_all_feedback(course: Course, results: list[SubmissionResult], published: bool) -> str:
    """Every result's feedback page; returns the line that says where they are."""
    late = {}
    for assignment in {result.assignment for result in results}:
        late[assignment], _ = lateness(course, assignment, [r.student for r in results if r.assignment == assignment])
    for result in results:
        write_feedback(course, result, published, late[result.assignment].get(result.student))
    visibility = "with hidden tests' messages" if published else "public messages only"
    assignments = ", ".join(sorted({result.assignment for result in results}))
    return f"{assignments}: feedback for {len(results)} student(s), {visibility}, in {feedback_dir(course)}"
