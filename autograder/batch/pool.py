"""The local execution backend: a pool of grading workers and one coordinator.

Each worker owns a slot (its own sandbox uid), a warm template (numpy/torch imported once for all the
first workers, one fork per submission) and the judge's warm per-assignment state. The coordinator
hands out one submission (or one part of one, see parts.py) at a time, and is the only writer of the
job table, the gradebook and the reports. A worker that dies is replaced; its submission is tried
again, up to MAX_ATTEMPTS, then recorded as failed with the reason.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from autograder.batch import judge_server
from autograder.batch.outcome import Outcome
from autograder.course import Course
from autograder.grading.grade import AssignmentSource
from autograder.grading.parts import NoCuda, Part
from autograder.grading.results import SubmissionResult
from autograder.sandbox.confine import Limits

MAX_ATTEMPTS = 3


@dataclass
class Job:
    student: str
    folder: Path
    digest: str
    attempts: int = 0
    part: Part = Part.ALL
    stop_after_loss: bool = False  # validation: a seeded bug needs grading only up to its first lost point

    def __post_init__(self) -> None:
        self.part = Part(self.part)


def worker_cpus(workers: int) -> list[int] | None:
    """The CPU each worker slot is pinned to, with the students it grades, or None (not pinned).

    A worker's judge and its student take turns, hundreds of times per submission. Left to the scheduler,
    a waking judge can be queued behind the other worker on a busy core while its own core is idle;
    pinned, each worker's pair takes turns on a core of its own and shares its caches. Only with 2 or
    more workers and a CPU each: one worker is left to move, and so is the coordinator."""
    allowed = sorted(os.sched_getaffinity(0))
    if workers < 2 or workers > len(allowed):
        return None
    return allowed[:workers]


def limit_threads() -> None:
    """One core per worker: the pool is the parallelism. numpy may be imported already, so its BLAS pool
    is limited through threadpoolctl; spinning BLAS threads of two workers otherwise fight over the cores
    and two workers grade slower than one."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


class GradingSlot:
    """What one grading worker keeps between submissions: per assignment the source and the judge's warm
    state, and one warm template (numpy/torch imported once, one fork per submission). Used by the local
    pool's workers and by the Celery task (autograder/batch/celery_app.py)."""

    def __init__(self, slot: int, course_root: str, handoff=None, cpu: int | None = None):
        """handoff: a warm template the pool launched for this slot (warm.TemplateHandoff), used first.
        cpu: the CPU its students are pinned to (worker_cpus), or None."""
        from autograder.sandbox.warm import TemplateLink

        self.slot = slot
        self.cpu = cpu
        self.course = Course.load(course_root)
        self.assignments: dict[str, tuple] = {}
        self.template = TemplateLink.adopt(handoff) if handoff is not None else None
        self.sandbox = None  # a warm.TemplateSandbox this worker launched itself (when it had none, or another)
        self.template_key = self._template_key(handoff.assignment, handoff.limits) if handoff is not None else None

    def _assignment(self, assignment: str) -> tuple:
        from autograder.grading.grade import AssignmentSource, Timeouts
        from autograder.grading.judge import JudgeCache

        if assignment not in self.assignments:
            source = AssignmentSource.load(self.course, assignment)
            timeouts = {gpu: Timeouts.for_assignment(self.course, source, gpu) for gpu in (False, True)}
            self.assignments[assignment] = (source, timeouts, JudgeCache())
        return self.assignments[assignment]

    def _launcher(self, assignment: str, source, limits: Limits):
        from autograder.sandbox.warm import TemplateSandbox, warm_available

        if not warm_available():
            return None
        key = self._template_key(assignment, limits)
        if self.template is not None and (self.template_key != key or not self.template.alive):
            self._close_template()
        if self.template is None:
            self.sandbox = TemplateSandbox([self.slot], limits=limits, preload=source.template_imports())
            self.template = self.sandbox.links[self.slot]
            self.template_key = key
        return functools.partial(self.template.spawn, cpu=self.cpu)

    def grade(
        self, assignment: str, student: str, folder: str, part: Part = Part.ALL, stop_after_loss: bool = False
    ) -> SubmissionResult:
        """Grade one part of one submission. Raises NoCuda for a GPU part on a machine without CUDA, and
        judge.CourseCodeError when the course's own code is broken."""
        from autograder.grading.grade import grade_submission

        part = Part(part)  # a Celery task sends the name
        limits = part.limits()
        source, timeouts, cache = self._assignment(assignment)
        launcher = self._launcher(assignment, source, limits)
        return grade_submission(
            source, Path(folder), student, timeouts[limits.gpu], limits, self.slot, launcher, cache, part,
            stop_after_loss,
        )  # fmt: skip

    @staticmethod
    def _template_key(assignment: str, limits: Limits) -> tuple[str, bool]:
        """A template serves one assignment (its preloads) with or without the GPU bound in."""
        return assignment, limits.gpu

    def prepare(self, assignment: str, part: Part = Part.ALL) -> None:
        """Warm up before the first submission: the template starts importing numpy/torch in its sandbox
        while the judge runs the read-only cells it can cache."""
        source, _, cache = self._assignment(assignment)
        self._launcher(assignment, source, part.limits())
        cache.warm(source.notebooks)

    def _close_template(self) -> None:
        if self.template is not None:
            self.template.close()
            self.template = None
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None

    def close(self) -> None:
        self._close_template()


def worker_main(slot: int, course_root: str, assignment: str, connection, handoff=None, cpu: int | None = None) -> None:
    """Grade submissions sent over `connection` until told to stop (None); pinned to `cpu` (worker_cpus)
    with the students it grades, unless None."""
    limit_threads()
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:  # the CPU went away (a changed cpuset): pinning only saves time
            pass
    from autograder.grading.judge import CourseCodeError

    grader = GradingSlot(slot, course_root, handoff, cpu)
    try:
        grader.prepare(assignment)
    except Exception:  # noqa: BLE001 -- only a warm-up: grading meets the error again and records it
        pass
    while True:
        task = connection.recv()
        if task is None:
            break
        student, folder, part, stop_after_loss = task
        try:
            connection.send((Outcome.DONE, grader.grade(assignment, student, folder, part, stop_after_loss)))
        except CourseCodeError as error:
            connection.send((Outcome.COURSE_ERROR, str(error)))
        except NoCuda as error:
            connection.send((Outcome.REFUSED, str(error)))
        except Exception as error:  # a grader bug must cost one submission, not the batch
            failed = SubmissionResult(student, assignment, problems=[f"grader error: {type(error).__name__}: {error}"])
            connection.send((Outcome.GRADER_ERROR, failed))
    grader.close()


@dataclass
class Worker:
    slot: int
    process: multiprocessing.Process
    connection: object
    job: Job | None = None
    started: float = field(default_factory=time.monotonic)


class LocalPool:
    def __init__(
        self,
        course: Course,
        assignment: str,
        workers: int,
        job_timeout_s: float,
        source: AssignmentSource | None = None,
    ):
        """source: the assignment's, when the caller has read it already (read here otherwise)."""
        self.course = course
        self.assignment = assignment
        self.size = max(1, workers)
        self.job_timeout_s = job_timeout_s
        # forkserver: workers start as forks of a clean server that has imported the grader once, and the
        # assignment's heavy modules (torch...) that the judge of every worker needs (judge_server.py)
        self.context = judge_server.context()
        self.template_imports = (source or AssignmentSource.load(course, assignment)).template_imports()
        self.cpus = worker_cpus(self.size)
        self.workers: dict[int, Worker] = {}
        self.templates = None  # warm.TemplateSandbox launched here: a template for each first worker
        self.starting: threading.Thread | None = None

    def start(self, jobs: int) -> None:
        """Launch the first workers' warm templates, then start the workers in the background: they warm
        up (imports, judge) while the coordinator opens the gradebook. `run` waits for them."""
        judge_server.start(self.course.root, self.assignment)  # `course grade` started it already
        self._launch_templates(min(self.size, jobs))
        self.starting = threading.Thread(target=self._start_all, args=(jobs,), daemon=True)
        self.starting.start()

    def _launch_templates(self, count: int) -> None:
        """One sandbox imports numpy/torch once, while the forkserver imports the judge's modules (instead
        of after it: a worker would launch its own only once it has been forked from the forkserver), and
        forks a template for each first worker. Each first worker adopts its slot's template; this process
        owns the sandbox (kills it on close). A replacement worker launches its own: the template of the
        worker it replaces cleans up and exits when that worker's end of the socket closes."""
        from autograder.sandbox.warm import TemplateSandbox, warm_available

        if not warm_available():
            return
        limits = Part.ALL.limits()
        self.templates = TemplateSandbox(list(range(count)), limits=limits, preload=self.template_imports)

    def _start_all(self, jobs: int) -> None:
        for slot in range(min(self.size, jobs)):
            if slot not in self.workers:
                self._start(slot)

    def _start(self, slot: int) -> Worker:
        fresh = self.templates is not None and slot in self.templates.links  # not yet handed to a worker
        handoff = self.templates.handoff(slot, self.assignment) if fresh else None
        ours, theirs = self.context.Pipe()
        cpu = self.cpus[slot] if self.cpus else None
        process = self.context.Process(
            target=worker_main, args=(slot, str(self.course.root), self.assignment, theirs, handoff, cpu), daemon=True
        )
        process.start()
        theirs.close()
        if fresh:
            self.templates.forget_link(slot)
        worker = Worker(slot, process, ours)
        self.workers[slot] = worker
        return worker

    def run(self, jobs: list[Job], on_start, on_result) -> None:
        """Grade `jobs`. on_start(job) before each try; on_result(job, kind, payload) for each outcome,
        kind an Outcome."""
        queue = deque(jobs)
        if self.starting is not None:
            self.starting.join()
        self._start_all(len(jobs))

        def dispatch(worker: Worker) -> None:
            if worker.job is None and queue:
                worker.job = queue.popleft()
                worker.job.attempts = on_start(worker.job)
                worker.started = time.monotonic()
                worker.connection.send(
                    (worker.job.student, str(worker.job.folder), worker.job.part, worker.job.stop_after_loss)
                )

        try:
            while queue or any(w.job for w in self.workers.values()):
                for worker in self.workers.values():
                    dispatch(worker)
                busy = [w for w in self.workers.values() if w.job is not None]
                ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
                for worker in list(busy):
                    if worker.connection in ready:
                        try:
                            kind, payload = worker.connection.recv()
                        except (EOFError, OSError):
                            kind, payload = Outcome.WORKER_DIED, "the grading worker exited"
                    elif worker.process.sentinel in ready:
                        code = worker.process.exitcode
                        kind, payload = Outcome.WORKER_DIED, f"the grading worker died (exit code {code})"
                    elif time.monotonic() - worker.started > self.job_timeout_s:
                        worker.process.kill()
                        hung = f"the grading worker hung for over {self.job_timeout_s:g} s"
                        kind, payload = Outcome.WORKER_DIED, hung
                    else:
                        continue
                    job, worker.job = worker.job, None
                    if kind == Outcome.WORKER_DIED:
                        worker.process.join(timeout=5)
                        self._start(worker.slot)
                        if job.attempts < MAX_ATTEMPTS:
                            queue.append(job)
                            continue
                        payload = f"{payload}; gave up after {job.attempts} attempts"
                    elif kind in (Outcome.DONE, Outcome.GRADER_ERROR):
                        dispatch(worker)  # the next submission first: the worker grades while we record this one
                    on_result(job, kind, payload)
        except BaseException:  # Ctrl-C or a course error: stop now, do not wait for running jobs
            for worker in self.workers.values():
                worker.process.kill()
            raise
        finally:
            self.close()

    def close(self) -> None:
        if self.starting is not None:  # workers still being started in the background: wait, then stop them all
            self.starting.join()
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
        if self.templates is not None:
            self.templates.close()
            self.templates = None
