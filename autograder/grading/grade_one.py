"""`course grade-one`: one submission, a notebook or a folder, graded for CI as `course grade` grades it,
with Gradescope's results.json written out."""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
import threading
from pathlib import Path

from autograder.batch.pool import limit_threads
from autograder.course import Course
from autograder.grading.grade import AssignmentSource, Timeouts, grade_submission
from autograder.grading.parts import Part
from autograder.grading.results import SubmissionResult
from autograder.records.reports import results_json


def import_in_background(modules: list[str]) -> threading.Thread:
    """Import the notebooks' heavy modules (torch...) for the judge while the sandbox starts and runs the
    student's first cells, so that the two costs overlap instead of adding up (grade-one's cold time).
    `modules` comes from AssignmentSource.judge_imports (torch brings torch._dynamo along)."""

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 -- the judge imports it again and reports the error there
                pass

    thread = threading.Thread(target=run, name="judge-imports", daemon=True)
    thread.start()
    return thread


def grade_one(course: Course, assignment: str, submission: Path, results_path: Path, part: Part) -> SubmissionResult:
    """Grade `submission` and write results.json. Raises CourseError for a request this machine cannot
    serve (a GPU part without CUDA); any other exception is the grader's failure, never the submission's."""
    source = AssignmentSource.load(course, assignment)
    part = Part(part)
    limits = part.limits()  # parts.NoCuda, a CourseError, for a GPU part without CUDA
    limit_threads()  # the judge's BLAS and torch threads otherwise spin against each other: 5x slower tests
    preload = import_in_background(source.judge_imports())
    with tempfile.TemporaryDirectory(prefix="grade-one-") as tmp:
        folder = submission
        if submission.is_file():
            folder = Path(tmp) / "submission"
            folder.mkdir()
            name = submission.name if submission.name in source.notebooks else next(iter(source.notebooks))
            shutil.copy(submission, folder / name)
        timeouts = Timeouts.for_assignment(course, source, gpu=limits.gpu)
        result = grade_submission(source, folder, "ci", timeouts, limits, part=part)
    preload.join()
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results_json(result), indent=1) + "\n")
    return result


def summary(result: SubmissionResult, results_path: Path) -> str:
    """What grade-one prints: the problems, then the score, the time and the isolation it had."""
    lines = [f"problem: {problem}" for problem in result.problems]
    lines.append(
        f"{result.assignment}: {result.score:g}/{result.auto_max:g} autograded points in {result.seconds:.1f} s "
        f"(isolation: {result.isolation or 'n/a'}); {results_path}"
    )
    return "\n".join(lines)
