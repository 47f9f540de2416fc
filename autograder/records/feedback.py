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

from html import escape
from pathlib import Path

from autograder.course import Course
from autograder.grading.results import CellResult, SubmissionResult

WAITING_FOR_GPU = "waiting for GPU runner"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.passed { color: #1a7f37; font-weight: bold; }
.failed { color: #cf222e; font-weight: bold; }
.partial { color: #9a6700; font-weight: bold; }
.pending { color: #555; font-style: italic; }
pre { white-space: pre-wrap; margin: 0.3em 0 0; font-size: 0.9em; background: #f6f8fa; padding: 0.3em; }
"""


def feedback_dir(course: Course) -> Path:
    return course.root / course.config.CourseDirectory.get("feedback_directory", "feedback")


def is_waiting_for_gpu(cell: CellResult) -> bool:
    """A GPU test not run yet: the batch marks it pending until a CUDA runner has graded it."""
    return bool(getattr(cell, "pending", False)) or cell.message.startswith("pending:")


def _verdict(cell: CellResult) -> tuple[str, str]:
    """(css class, word) for one cell."""
    if is_waiting_for_gpu(cell):
        return "pending", WAITING_FOR_GPU
    if cell.manual:
        return "pending", "to be graded by a person"
    if cell.score >= cell.max_points:
        return "passed", "passed"
    if cell.score > 0:
        return "partial", "partial credit"
    return "failed", "failed"


def _message(cell: CellResult, published: bool) -> str:
    if is_waiting_for_gpu(cell) or cell.manual:
        return ""
    return cell.message if published else cell.public_message


def _score_text(cell: CellResult) -> str:
    if cell.manual or is_waiting_for_gpu(cell):
        return f"&ndash; / {cell.max_points:g}"
    return f"{cell.score:g} / {cell.max_points:g}"


def _cell_row(cell: CellResult, published: bool) -> str:
    css, word = _verdict(cell)
    details = escape(_message(cell, published))
    if cell.output and not cell.manual:
        details += f"<pre>{escape(cell.output)}</pre>"
    name = escape(cell.grade_id) + (" <small>(GPU)</small>" if cell.gpu else "")
    return (
        f'<tr><td>{name}</td><td>{_score_text(cell)}</td><td class="{css}">{escape(word)}</td><td>{details}</td></tr>'
    )


def _notes(title: str, lines: list[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<h3>{escape(title)}</h3><ul>{items}</ul>"


def _for_notebook(lines: list[str], notebook: str) -> list[str]:
    prefix = f"{notebook}: "
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def render_feedback(result: SubmissionResult, published: bool) -> str:
    notebooks = list(dict.fromkeys(cell.notebook for cell in result.cells))
    manual_pending = sum(cell.max_points for cell in result.cells if cell.manual and not is_waiting_for_gpu(cell))
    gpu_pending = [cell for cell in result.cells if is_waiting_for_gpu(cell)]
    header = [
        f"<p>Autograded score: <b>{result.score:g} / {result.auto_max:g}</b></p>",
    ]
    if manual_pending:
        header.append(f"<p>Manually graded points pending: {manual_pending:g}</p>")
    if gpu_pending:
        header.append(f"<p>{len(gpu_pending)} test(s) {WAITING_FOR_GPU}: their points are not counted yet.</p>")
    if not published and any(cell.has_hidden for cell in result.cells):
        header.append("<p>Some tests have hidden parts; their details are published with the grades.</p>")

    body = []
    for notebook in notebooks:
        rows = "".join(_cell_row(cell, published) for cell in result.cells if cell.notebook == notebook)
        body.append(
            f"<h2>{escape(notebook)}</h2><table><tr><th>test</th><th>points</th><th>result</th><th>details</th></tr>"
            f"{rows}</table>"
            + _notes("Problems", _for_notebook(result.problems, notebook))
            + _notes("Notes", _for_notebook(result.findings, notebook))
        )
    general = [line for line in result.problems if not any(line.startswith(f"{nb}: ") for nb in notebooks)]
    notes = [line for line in result.findings if not any(line.startswith(f"{nb}: ") for nb in notebooks)]
    body.append(_notes("Problems", general) + _notes("Notes", notes))

    title = f"{result.assignment}: feedback for {result.student}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{''.join(header)}{''.join(body)}</body></html>\n"
    )


def write_feedback(course: Course, result: SubmissionResult, published: bool = False) -> Path:
    """Write feedback/<student>/<assignment>/feedback.html and return its path."""
    for name in (result.student, result.assignment):
        if name in ("", ".", "..") or "/" in name or "\\" in name:
            raise ValueError(f"refusing to write feedback for the path component {name!r}")
    folder = feedback_dir(course) / result.student / result.assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feedback.html"
    path.write_text(render_feedback(result, published), encoding="utf-8")
    return path
