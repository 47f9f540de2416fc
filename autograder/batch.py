"""`course grade`: a whole assignment, resumable, in parallel, with progress and a summary.

Order of writes for each finished submission: autograded notebook and results.json, then the job
table, then the gradebook. Every run first re-syncs the gradebook from the job table, so a batch killed
at any point (kill -9 included) and run again grades each remaining submission exactly once and loses
none.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from tqdm import tqdm

from autograder import cells
from autograder.course import Course, CourseError
from autograder.grade import AssignmentSource, Timeouts, submissions
from autograder.gradebook import GradebookWriter
from autograder.jobs import JobTable, content_hash, table_path
from autograder.pool import Job, LocalPool
from autograder.reports import write_autograded, write_grades_csv, write_results_json
from autograder.results import CellResult, SubmissionResult


@dataclass
class BatchReport:
    results: list[SubmissionResult]  # every current submission's latest result
    graded: int  # graded in this run
    skipped: int  # unchanged since an earlier run
    seconds: float

    @property
    def has_problems(self) -> bool:
        return any(result.has_problems for result in self.results)


def source_digest(source: AssignmentSource) -> str:
    digest = hashlib.sha256()
    for name, notebook in sorted(source.notebooks.items()):
        digest.update(name.encode() + b"\0")
        for cell in notebook.cells:
            digest.update(cell.cell_type.encode() + cell.source.encode() + b"\0")
            digest.update(repr(sorted(cell.metadata.get("nbgrader", {}).items())).encode())
    if source.data_dir is not None:
        for path in sorted(source.data_dir.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb":
                digest.update(str(path.relative_to(source.data_dir)).encode() + path.read_bytes())
    return digest.hexdigest()


def failed_result(source: AssignmentSource, student: str, reason: str) -> SubmissionResult:
    """A submission the grader could not grade: every test 0 with the reason, manual cells pending."""
    result = SubmissionResult(student, source.name, problems=[reason])
    for name, notebook in source.notebooks.items():
        for cell in notebook.cells:
            if cells.role(cell) == "test":
                result.cells.append(
                    CellResult(
                        name,
                        cells.grade_id(cell),
                        cells.points(cell),
                        0.0,
                        f"not graded: {reason}",
                        gpu=cells.is_gpu(cell),
                    )
                )
            elif cells.role(cell) == "solution" and cells.is_graded(cell):
                result.cells.append(
                    CellResult(name, cells.grade_id(cell), cells.points(cell), None, "needs manual grading")
                )
    return result


def grade_batch(
    course: Course,
    assignment: str,
    workers: int = 2,
    force: bool = False,
    students: list[str] | None = None,
    show_progress: bool = True,
) -> BatchReport:
    started = time.monotonic()
    source = AssignmentSource.load(course, assignment)
    digest_of_source = source_digest(source)
    table = JobTable(table_path(course))
    table.release_running(assignment)
    current = [(s, f) for s, f in submissions(course, assignment) if not students or s in students]
    jobs, skipped = [], 0
    for student, folder in current:
        digest = content_hash(folder, digest_of_source)
        if not force and table.is_done(assignment, student, digest):
            skipped += 1
        else:
            jobs.append(Job(student, folder, digest))

    timeouts = Timeouts.from_course(course)
    job_timeout = timeouts.notebook_s * len(source.notebooks) + 120
    with GradebookWriter(course, assignment, source.notebooks) as gradebook:
        for result in table.results(assignment):  # re-sync: a killed run may have stopped between writes
            gradebook.write(result)
        bar = tqdm(total=len(jobs), unit="submission", desc=assignment, disable=not show_progress, leave=True)

        def on_start(job: Job) -> int:
            bar.set_postfix_str(job.student)
            return table.start(assignment, job.student, job.digest)

        def on_result(job: Job, kind: str, payload) -> None:
            if kind == "course_error":
                raise CourseError(f"{course.source_dir / assignment}: {payload}")
            if kind == "worker_died":
                result = failed_result(source, job.student, payload)
            elif kind == "grader_error":
                result = failed_result(source, job.student, "; ".join(payload.problems))
            else:
                result = payload
            if result.autograded:
                write_autograded(course, result)
            write_results_json(course, result)
            table.finish(assignment, job.student, result, "done" if kind == "done" else "failed")
            gradebook.write(result)
            bar.update(1)

        try:
            if jobs:
                LocalPool(course, assignment, workers, job_timeout).run(jobs, on_start, on_result)
        except BaseException:
            table.release_running(assignment)
            raise
        finally:
            bar.close()

    wanted = {student for student, _ in current}
    results = [result for result in table.results(assignment) if result.student in wanted]
    table.close()
    if results:
        write_grades_csv(course, assignment, results)
    return BatchReport(results, graded=len(jobs), skipped=skipped, seconds=time.monotonic() - started)
