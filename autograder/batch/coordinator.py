"""`course grade`: a whole assignment, resumable, in parallel, with progress and a summary.

Order of writes for each finished submission (or part of one): autograded notebook, then the job
table, then results.json and the gradebook. Every run first re-syncs the gradebook from the job table, so a batch killed
at any point (kill -9 included) and run again grades each remaining submission exactly once and loses
none.

Where the gradings run (the backend): "local", a pool of worker processes on this machine (pool.py), or
"celery", workers anywhere that read the same course directory, fed through Redis (celery_app.py).
Either way this process is the only writer of the job table, the gradebook and the reports.

GPU-tagged tests: with the Celery backend a submission is graded in two parts, "cpu" (on the `cpu` queue;
GPU tests recorded as pending, "waiting for GPU runner") and "gpu" (on the `gpu` queue, taken only by
CUDA runners), merged in the job table. The local backend grades everything here in one part
(gpu_tests="here": on a machine without CUDA the notebooks' CPU smoke budgets apply, as they always
did), or only the CPU part (gpu_tests="wait": GPU tests stay pending until a Celery run with a gpu
worker grades them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import nbformat
from nbformat.v4 import nbjson
from tqdm import tqdm

from autograder.batch.digests import content_hash, source_digest
from autograder.batch.jobs import JobTable, table_path
from autograder.batch.outcome import Outcome
from autograder.batch.pool import Job, LocalPool
from autograder.course import Course, CourseError
from autograder.grading import parts
from autograder.grading.grade import AssignmentSource, Timeouts, submissions
from autograder.grading.parts import Part
from autograder.grading.results import SubmissionResult
from autograder.records.gradebook import GradebookWriter
from autograder.records.reports import write_grades_csv, write_results_json

CSV_EVERY_S = 5.0  # while parts keep arriving, grades.csv is rewritten at most this often


@dataclass
class BatchReport:
    results: list[SubmissionResult]  # every current submission's latest result
    graded: int  # graded in this run
    skipped: int  # unchanged since an earlier run
    seconds: float

    @property
    def has_problems(self) -> bool:
        return any(result.has_problems for result in self.results)

    @property
    def waiting_for_gpu(self) -> list[SubmissionResult]:
        return [result for result in self.results if result.waiting_for_gpu]


def _write_notebooks(course: Course, table: JobTable, job: Job, result: SubmissionResult, gpu_ids: set[str]) -> None:
    """autograded/<student>/<a>/: a part's notebooks, merged with the other part's when that is done."""
    folder = course.autograded_dir / job.student / result.assignment
    folder.mkdir(parents=True, exist_ok=True)
    other = job.part.other
    merge = other is not None and table.is_done(result.assignment, job.student, job.digest, other)
    for name, notebook in result.autograded.items():
        path = folder / name
        if merge and path.is_file():
            on_disk = nbformat.read(path, as_version=4)
            base, gpu = (notebook, on_disk) if job.part == Part.CPU else (on_disk, notebook)
            notebook = parts.merge_notebook(base, gpu, gpu_ids)
        # nbformat's own JSON writer, as nbformat.write uses it, without validating again: the grader built
        # these cells itself (tests/test_grade.py validates its notebooks); half the cost per submission
        path.write_text(nbjson.writes(notebook) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _giving_way(starting: bool):
    """Open the gradebook (importing nbgrader) at the lowest priority while the local pool starts: its
    forkserver, which imports torch for the judges, is what the first submission waits for, and must not
    share its core with us. Root only (warm templates
    need root anyway): lowering is allowed to anyone, but only root may raise the priority back. On Linux
    the priority is per thread: the pool's starting thread keeps its own."""
    if not starting or os.geteuid() != 0:
        yield
        return
    before = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, 19)
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def _executor(course: Course, assignment: str, backend: str, workers: int, job_timeout: float, table: JobTable,
              broker_url: str | None, wait_for_gpu: bool, force: bool, source: AssignmentSource):  # fmt: skip
    if backend == "local":
        return LocalPool(course, assignment, workers, job_timeout, source)
    from autograder.batch.celery_app import CeleryExecutor  # Celery is needed only here

    # Tasks an earlier coordinator sent are collected, not sent again; --force sends everything anew
    # (the way out if Redis lost tasks, e.g. its data was deleted).
    in_flight = {} if force else table.in_flight(assignment)
    return CeleryExecutor(course, assignment, broker_url, in_flight, wait_for_gpu)


def _never() -> bool:
    return False


@contextlib.contextmanager
def _interrupt_flag():
    """Ctrl-C raises KeyboardInterrupt wherever the main thread is. Where that place swallows it (a finaliser
    the garbage collector runs: "Exception ignored in ..."; seen in CI), the batch went on to the end: the
    flag this yields stops it at its next submission instead."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not (
        signal.default_int_handler
    ):
        yield _never
        return
    seen: list[int] = []

    def handler(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def grade_batch(
    course: Course,
    assignment: str,
    workers: int = 2,
    force: bool = False,
    students: list[str] | None = None,
    show_progress: bool = True,
    backend: str = "local",
    gpu_tests: str = "here",
    broker_url: str | None = None,
    wait_for_gpu: bool = True,
    stop_after_loss: Callable[[str], bool] | None = None,
) -> BatchReport:
    """Grade every (or each named) student's submission of `assignment`; see the module docstring.
    wait_for_gpu=False (Celery): return once only GPU parts are left; they stay queued and the next run
    collects them. stop_after_loss(student): grade that student only up to the first lost point (local
    backend; `course validate --quick` uses it for seeded bugs)."""
    started = time.monotonic()
    source = AssignmentSource.load(course, assignment)
    digest_of_source = source_digest(source)
    gpu_ids = parts.gpu_test_ids(source.notebooks)
    table = JobTable(table_path(course))
    table.release_running(assignment)
    current = [(s, f) for s, f in submissions(course, assignment) if not students or s in students]
    wanted_parts = parts.parts_to_grade(source.notebooks, backend, gpu_tests)
    jobs, skipped = [], 0
    for student, folder in current:
        digest = content_hash(folder, digest_of_source)
        todo = [p for p in wanted_parts if force or not table.is_done(assignment, student, digest, p)]
        quick = stop_after_loss is not None and stop_after_loss(student)
        jobs.extend(Job(student, folder, digest, part=part, stop_after_loss=quick) for part in todo)
        skipped += not todo

    timeouts = Timeouts.for_assignment(course, source, gpu=Part.GPU in wanted_parts)
    job_timeout = timeouts.notebook_s * len(source.notebooks) + 120
    executor = (
        _executor(course, assignment, backend, workers, job_timeout, table, broker_url, wait_for_gpu, force, source)
        if jobs
        else None
    )
    starting = isinstance(executor, LocalPool)
    if starting:
        executor.start(len(jobs))  # the workers warm up while nbgrader opens the gradebook
    try:
        with _giving_way(starting):
            writer = GradebookWriter(course, assignment, source.notebooks)
    except BaseException:
        if starting:
            executor.close()
        raise
    with writer as gradebook:
        # re-sync: a killed run may have stopped between the job table and the gradebook, and the gradebook
        # may be a new file
        stale, in_gradebook = table.unsynced(assignment), gradebook.students()
        for result in table.results(assignment):
            if result.student in stale or result.student not in in_gradebook:
                gradebook.write(result)
                table.mark_synced(assignment, result.student)
        bar = tqdm(total=len(jobs), unit="part" if any(j.part != Part.ALL for j in jobs) else "submission",
                   desc=assignment, disable=not show_progress, leave=True)  # fmt: skip
        wanted = {student for student, _ in current}
        csv_written = time.monotonic()
        interrupted = _never

        def on_start(job: Job, task_id: str | None = None) -> int:
            if interrupted():
                raise KeyboardInterrupt
            bar.set_postfix_str(job.student)
            return table.start(assignment, job.student, job.digest, job.part, task_id)

        def on_result(job: Job, kind: str, payload) -> None:
            nonlocal csv_written
            if interrupted():
                raise KeyboardInterrupt
            if kind == Outcome.COURSE_ERROR:
                raise CourseError(f"{course.source_dir / assignment}: {payload}")
            if kind == Outcome.REFUSED:  # a GPU part reached a worker without CUDA
                raise CourseError(payload)
            if kind in (Outcome.WORKER_DIED, Outcome.GRADER_ERROR):
                reason = payload if kind == Outcome.WORKER_DIED else "; ".join(payload.problems)
                result = parts.not_graded(assignment, source.notebooks, job.student, reason, job.part)
            else:
                result = payload
            if result.autograded:
                _write_notebooks(course, table, job, result, gpu_ids)
            table.finish(assignment, job.student, result, "done" if kind == Outcome.DONE else "failed", job.part)
            table.note_attempts(assignment, job.student, job.part, job.attempts)
            merged = table.result(assignment, job.student)
            if merged is not None:  # None: a GPU part that beat its CPU part here; that one reports both
                write_results_json(course, merged)
                gradebook.write(merged)
                table.mark_synced(assignment, job.student)
            bar.update(1)
            if backend == "celery" and time.monotonic() - csv_written > CSV_EVERY_S:
                write_grades_csv(course, assignment, [r for r in table.results(assignment) if r.student in wanted])
                csv_written = time.monotonic()

        try:
            with _interrupt_flag() as interrupted_now:
                interrupted = interrupted_now
                if executor is not None:
                    executor.run(jobs, on_start, on_result)
        except BaseException:
            table.release_running(assignment)
            raise
        finally:
            bar.close()

    results = [result for result in table.results(assignment) if result.student in wanted]
    table.close()
    if results:
        write_grades_csv(course, assignment, results)
    return BatchReport(results, graded=len({job.student for job in jobs}), skipped=skipped,
                       seconds=time.monotonic() - started)  # fmt: skip
