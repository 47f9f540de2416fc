"""The local execution backend: a pool of grading workers and one coordinator.

Each worker owns a slot (its own sandbox uid), a warm template (numpy/torch imported once, one fork per
submission) and the judge's warm per-assignment state. The coordinator hands out one submission at a
time, and is the only writer of the job table, the gradebook and the reports. A worker that dies is
replaced; its submission is tried again, up to MAX_ATTEMPTS, then recorded as failed with the reason.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from autograder.course import Course
from autograder.results import SubmissionResult

MAX_ATTEMPTS = 3


@dataclass
class Job:
    student: str
    folder: Path
    digest: str
    attempts: int = 0


def worker_main(slot: int, course_root: str, assignment: str, connection) -> None:
    """Grade submissions sent over `connection` until told to stop (None)."""
    # One core per worker: the pool is the parallelism. numpy was imported (by the forkserver) before this
    # line, so its BLAS pool is limited through threadpoolctl; spinning BLAS threads of two workers
    # otherwise fight over the cores and two workers grade slower than one.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from autograder.grade import AssignmentSource, Timeouts, grade_submission
    from autograder.judge import CourseCodeError, JudgeCache
    from autograder.warm import Template, warm_available

    course = Course.load(course_root)
    source = AssignmentSource.load(course, assignment)
    timeouts = Timeouts.from_course(course)
    cache = JudgeCache()
    template = None
    while True:
        task = connection.recv()
        if task is None:
            break
        student, folder = task
        try:
            if warm_available() and (template is None or not template.alive):
                template = Template(slot, preload=source.heavy_imports())
            launcher = template.spawn if template is not None else None
            result = grade_submission(source, Path(folder), student, timeouts, slot=slot, launcher=launcher,
                                      cache=cache)  # fmt: skip
            connection.send(("done", result))
        except CourseCodeError as error:
            connection.send(("course_error", str(error)))
        except Exception as error:  # a grader bug must cost one submission, not the batch
            failed = SubmissionResult(student, assignment, problems=[f"grader error: {type(error).__name__}: {error}"])
            connection.send(("grader_error", failed))
    if template is not None:
        template.close()


@dataclass
class Worker:
    slot: int
    process: multiprocessing.Process
    connection: object
    job: Job | None = None
    started: float = field(default_factory=time.monotonic)


class LocalPool:
    def __init__(self, course: Course, assignment: str, workers: int, job_timeout_s: float):
        self.course = course
        self.assignment = assignment
        self.size = max(1, workers)
        self.job_timeout_s = job_timeout_s
        # forkserver: workers start as forks of a clean server that has imported the grader once
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["autograder.grade", "autograder.warm", "autograder.judge"])
        self.workers: dict[int, Worker] = {}

    def _start(self, slot: int) -> Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=worker_main, args=(slot, str(self.course.root), self.assignment, theirs), daemon=True
        )
        process.start()
        theirs.close()
        worker = Worker(slot, process, ours)
        self.workers[slot] = worker
        return worker

    def run(self, jobs: list[Job], on_start, on_result) -> None:
        """Grade `jobs`. on_start(job) before each try; on_result(job, kind, payload) for each outcome,
        where kind is "done", "grader_error", "course_error" or "worker_died"."""
        queue = deque(jobs)
        for slot in range(min(self.size, len(jobs))):
            self._start(slot)
        try:
            while queue or any(w.job for w in self.workers.values()):
                for worker in self.workers.values():
                    if worker.job is None and queue:
                        worker.job = queue.popleft()
                        worker.job.attempts = on_start(worker.job)
                        worker.started = time.monotonic()
                        worker.connection.send((worker.job.student, str(worker.job.folder)))
                busy = [w for w in self.workers.values() if w.job is not None]
                ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
                for worker in list(busy):
                    if worker.connection in ready:
                        try:
                            kind, payload = worker.connection.recv()
                        except (EOFError, OSError):
                            kind, payload = "worker_died", "the grading worker exited"
                    elif worker.process.sentinel in ready:
                        kind, payload = "worker_died", f"the grading worker died (exit code {worker.process.exitcode})"
                    elif time.monotonic() - worker.started > self.job_timeout_s:
                        worker.process.kill()
                        kind, payload = "worker_died", f"the grading worker hung for over {self.job_timeout_s:g} s"
                    else:
                        continue
                    job, worker.job = worker.job, None
                    if kind == "worker_died":
                        worker.process.join(timeout=5)
                        self._start(worker.slot)
                        if job.attempts < MAX_ATTEMPTS:
                            queue.append(job)
                            continue
                        payload = f"{payload}; gave up after {job.attempts} attempts"
                    on_result(job, kind, payload)
        except BaseException:  # Ctrl-C or a course error: stop now, do not wait for running jobs
            for worker in self.workers.values():
                worker.process.kill()
            raise
        finally:
            self.close()

    def close(self) -> None:
        for worker in self.workers.values():
            try:
                worker.connection.send(None)
            except (OSError, ValueError):
                pass
        for worker in self.workers.values():
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
        self.workers = {}
