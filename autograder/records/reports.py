"""Files a grading run leaves behind: autograded notebooks, grades.csv, Gradescope results.json.

Visibility: the autograded notebook is what students get back as feedback, so it carries the public
version of each test and only public messages. results.json follows Gradescope's schema: a test cell
with hidden tests is `after_published`, and only there may its hidden failure message appear.

A GPU test no CUDA runner has graded yet is never a 0: results.json lists it without a score and says
"waiting for GPU runner", grades.csv writes that text in its column.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from autograder.course import Course
from autograder.grading.results import WAITING_FOR_GPU, SubmissionResult

RESULTS_SCHEMA = Path(__file__).parent / "schemas" / "gradescope_results.schema.json"


def results_json(result: SubmissionResult) -> dict:
    """Gradescope's results.json (RESULTS_SCHEMA; tests validate what this writes against it)."""
    tests = []
    for cell in result.cells:
        if cell.manual:
            continue
        if cell.pending:  # Gradescope's per-test score is optional; the overall score counts it as 0 for now
            tests.append(
                {
                    "name": f"{cell.notebook}:{cell.grade_id}",
                    "max_score": cell.max_points,
                    "output": WAITING_FOR_GPU,
                    "visibility": "after_published" if cell.has_hidden else "visible",
                }
            )
            continue
        tests.append(
            {
                "name": f"{cell.notebook}:{cell.grade_id}",
                "score": round(cell.score, 4),
                "max_score": cell.max_points,
                "output": (cell.output + ("\n" if cell.output and cell.message else "") + cell.message).strip(),
                "visibility": "after_published" if cell.has_hidden else "visible",
            }
        )
    notes = [f"problem: {problem}" for problem in result.problems] + [f"note: {f}" for f in result.findings]
    waiting = result.waiting_for_gpu
    if waiting:
        points = sum(cell.max_points for cell in waiting)
        notes.append(f"{len(waiting)} GPU test(s) {WAITING_FOR_GPU}: {points:g} points not graded yet")
    if result.isolation and result.isolation != "bubblewrap":
        notes.append(f"isolation {result.isolation}")
    return {
        "score": round(result.score, 4),
        "max_score": result.auto_max,
        "execution_time": round(result.seconds, 3),
        "output": "\n".join(notes),
        "tests": tests,
    }


def write_results_json(course: Course, result: SubmissionResult) -> Path:
    folder = course.reports_dir / result.assignment / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.student}.json"
    path.write_text(json.dumps(results_json(result), indent=1) + "\n")
    return path


def write_grades_csv(course: Course, assignment: str, results: list[SubmissionResult]) -> Path:
    """One row per student: student_id, score, max_score, then one column per graded cell."""
    folder = course.reports_dir / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "grades.csv"
    columns: list[str] = []
    for result in results:
        for cell in result.cells:
            if cell.grade_id not in columns:
                columns.append(cell.grade_id)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "score", "max_score", *columns, "problems"])
        for result in sorted(results, key=lambda r: r.student):
            by_id = {cell.grade_id: cell for cell in result.cells}
            row = [result.student, f"{result.score:g}", f"{result.max_score:g}"]
            for column in columns:
                cell = by_id.get(column)
                if cell is not None and cell.pending:
                    row.append(WAITING_FOR_GPU)
                else:
                    row.append("" if cell is None or cell.manual else f"{cell.score:g}")
            row.append("; ".join(result.problems))
            writer.writerow(row)
    return path
