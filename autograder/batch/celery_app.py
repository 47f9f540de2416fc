"""The Celery backend: grading tasks on Redis queues `cpu` and `gpu`, and the coordinator that feeds them.

`course grade --backend celery` (the coordinator) sends one task per (submission, part) and collects the
results; it stays the only writer of the job table, the gradebook and the reports. `course worker
--queue cpu|gpu` runs a Celery worker (prefork) whose processes grade with the local engine's own code
(pool.GradingSlot: warm template, judge cache, sandbox). Workers read the course from the path the
coordinator sends, so they need the course directory at the same path (one machine, or a shared
filesystem). Everything crossing Redis is JSON (results as dicts, autograded notebooks as nbformat
JSON); nothing is ever pickled.

Long jobs and dying workers:
- a task is acknowledged only when it finished (task_acks_late) and put back when the process running
  it dies (task_reject_on_worker_lost), so a worker killed mid-job costs a redelivery, not the job;
- each worker process takes one task at a time (worker_prefetch_multiplier=1);
- Redis redelivers a task whose worker vanished once it has been unacknowledged for visibility_timeout,
  which is longer than the longest job;
- a task counts its own starts in Redis (course:attempts:<task id>): a submission that kills its worker
  MAX_ATTEMPTS times is returned as failed with the reason instead of being redelivered for ever.

Flower: `celery -A autograder.batch.celery_app flower --address=127.0.0.1` (broker from COURSE_BROKER_URL).
"""

from __future__ import annotations

import os
import time
import uuid

import nbformat
from celery import Celery
from celery.exceptions import Reject
from celery.signals import worker_process_init

from autograder.batch.outcome import Outcome
from autograder.batch.pool import MAX_ATTEMPTS, GradingSlot, Job, limit_threads
from autograder.course import broker_url, visibility_timeout_s
from autograder.grading.parts import QUEUES, NoCuda, Part, cuda_device_count
from autograder.sandbox import confine

ATTEMPTS_TTL_S = 7 * 24 * 3600

app = Celery("autograder")


def configure(url: str | None = None, course=None) -> Celery:
    """Point the app at Redis: the URL given, else course.broker_url's choice (env, course config)."""
    url = broker_url(url, course)
    # Longer than the longest job: a task is redelivered only after its worker has been gone this long.
    transport = {"visibility_timeout": visibility_timeout_s()}
    app.conf.update(
        broker_url=url,
        result_backend=url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        task_default_queue="cpu",
        task_track_started=True,
        task_send_sent_event=True,
        worker_send_task_events=True,  # Flower sees tasks as they run
        result_expires=ATTEMPTS_TTL_S,
        result_backend_always_retry=True,
        result_backend_max_retries=60,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
    )
    return app


configure()


@worker_process_init.connect
def _init_worker_process(**_) -> None:
    """Each worker process: one BLAS thread, and on a CUDA runner its own GPU out of those visible
    (processes share GPUs round-robin when there are more processes than GPUs)."""
    from celery.utils.log import current_process_index

    limit_threads()
    index = current_process_index(base=0) or 0
    count = cuda_device_count()
    if count:
        visible = os.environ.get(confine.CUDA_DEVICES)
        devices = visible.split(",") if visible else [str(n) for n in range(count)]
        os.environ[confine.CUDA_DEVICES] = devices[index % len(devices)]


_slots: dict[str, GradingSlot] = {}


def _slot(course_root: str) -> GradingSlot:
    from celery.utils.log import current_process_index

    if course_root not in _slots:
        _slots[course_root] = GradingSlot(current_process_index(base=0) or 0, course_root)
    return _slots[course_root]


def _redis():
    import redis

    return redis.Redis.from_url(app.conf.broker_url)


def attempts_key(task_id: str) -> str:
    return f"course:attempts:{task_id}"


@app.task(name="autograder.grade_part", bind=True)
def grade_part(self, course_root: str, assignment: str, student: str, folder: str, part: str) -> dict:
    """Grade one part of one submission; returns {"kind", "attempts", "result", "autograded"} as JSON."""
    key = attempts_key(self.request.id)
    client = _redis()
    attempts = client.incr(key)
    client.expire(key, ATTEMPTS_TTL_S)
    if attempts > MAX_ATTEMPTS:
        reason = (f"the grading worker died while grading this submission ({MAX_ATTEMPTS} times); "
                  f"gave up after {MAX_ATTEMPTS} attempts")  # fmt: skip
        return {"kind": Outcome.WORKER_DIED.value, "reason": reason, "attempts": MAX_ATTEMPTS}
    from autograder.grading.judge import CourseCodeError

    try:
        result = _slot(course_root).grade(assignment, student, folder, part)
    except NoCuda as error:
        client.decr(key)
        time.sleep(5)  # do not spin on a job this worker must never take
        raise Reject(str(error), requeue=True) from None
    except CourseCodeError as error:
        return {"kind": Outcome.COURSE_ERROR.value, "reason": str(error), "attempts": attempts}
    except Exception as error:  # a grader bug must cost one submission, not the batch
        reason = f"grader error: {type(error).__name__}: {error}"
        return {"kind": Outcome.GRADER_ERROR.value, "reason": reason, "attempts": attempts}
    return {
        "kind": Outcome.DONE.value,
        "attempts": attempts,
        "result": result.to_dict(),
        "autograded": {name: nbformat.writes(nb) for name, nb in result.autograded.items()},
    }


def decode(payload: dict, assignment: str, student: str) -> tuple[str, object]:
    """A task's JSON answer as (kind, payload) for coordinator.grade_batch's on_result."""
    from autograder.grading.results import SubmissionResult

    kind = Outcome(payload["kind"])
    if kind == Outcome.DONE:
        result = SubmissionResult.from_dict(payload["result"])
        result.autograded = {name: nbformat.reads(text, as_version=4) for name, text in payload["autograded"].items()}
        return kind, result
    if kind == Outcome.GRADER_ERROR:
        return kind, SubmissionResult(student, assignment, problems=[payload["reason"]])
    return kind, payload["reason"]


class CeleryExecutor:
    """The coordinator's side: enqueue each job on its queue, collect results as they arrive.

    A job whose task is still in flight from an earlier (killed) coordinator is not sent again: its
    result is collected by task id. Redis being restarted only delays the batch: sending and polling
    are retried until it answers again.

    A task can still be lost when Redis stops at the wrong moment: kombu pops a message (BRPOP) and
    only then records it as unacknowledged, so a message popped just before a shutdown is in no queue
    and in no worker's hands, and nothing would ever redeliver it. The coordinator looks for its
    unfinished tasks' messages in the queues and in the unacknowledged set every LOST_CHECK_S; a task
    missing from both for LOST_AFTER_S (a live message is missing for microseconds) is sent again
    under the same id, so its start counter carries on."""

    POLL_S = 0.2
    LOST_CHECK_S = 3.0
    LOST_AFTER_S = 15.0

    def __init__(self, course, assignment: str, url: str | None, in_flight: dict, wait_for_gpu: bool = True):
        self.course = course
        self.assignment = assignment
        self.in_flight = in_flight
        self.wait_for_gpu = wait_for_gpu  # False: return once only GPU parts are left (still queued)
        self.missing_since: dict[str, float] = {}  # task id -> when its message was first found nowhere
        self.next_lost_check = time.monotonic() + self.LOST_CHECK_S
        configure(url, course)
        app.backend.on_task_call = _no_subscription
        try:
            _redis().ping()
        except Exception as error:
            from autograder.course import CourseError

            raise CourseError(f"cannot reach Redis at {app.conf.broker_url} ({error}): start redis-server, "
                              f"or pass --broker / COURSE_BROKER_URL") from None  # fmt: skip

    def _retry(self, action, what: str, patience_s: float = 300.0):
        from kombu.exceptions import OperationalError
        from redis.exceptions import RedisError

        deadline = time.monotonic() + patience_s
        while True:
            try:
                return action()
            except (OperationalError, RedisError, ConnectionError, TimeoutError) as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Redis at {app.conf.broker_url} did not answer for {patience_s:g} s "
                                       f"while {what}: {error}") from error  # fmt: skip
                time.sleep(1.0)

    def _send(self, job: Job, task_id: str | None = None) -> str:
        task_id = task_id or str(uuid.uuid4())
        args = [str(self.course.root), self.assignment, job.student, str(job.folder), str(job.part)]
        queue = job.part.queue
        self._retry(lambda: grade_part.apply_async(args=args, queue=queue, task_id=task_id), "sending a job")
        return task_id

    def run(self, jobs: list[Job], on_start, on_result) -> None:
        waiting: dict[str, Job] = {}
        for job in jobs:
            digest, task_id = self.in_flight.get((job.student, job.part), (None, None))
            if digest != job.digest:
                task_id = self._send(job)  # sent first, then recorded: a crash in between re-sends
                job.attempts = on_start(job, task_id)
            waiting[task_id] = job
        while waiting and (self.wait_for_gpu or any(job.part != Part.GPU for job in waiting.values())):
            self._collect(waiting, on_result)
            if time.monotonic() >= self.next_lost_check:
                self._send_lost_again(waiting)
                self.next_lost_check = time.monotonic() + self.LOST_CHECK_S
            time.sleep(self.POLL_S)
        self._collect(waiting, on_result)  # GPU parts that are ready already

    def _collect(self, waiting: dict[str, Job], on_result) -> None:
        """on_result for every task of `waiting` that has finished; those leave `waiting`."""
        for task_id, job in list(waiting.items()):
            async_result = app.AsyncResult(task_id)
            if not self._retry(async_result.ready, "collecting results"):
                continue
            answer = self._retry(lambda r=async_result: r.result, "collecting results")  # ready: a GET, no wait
            if isinstance(answer, dict):
                job.attempts = max(job.attempts, int(answer.get("attempts", 0)))
                kind, payload = decode(answer, self.assignment, job.student)
            else:  # the task raised: a grader bug
                from autograder.grading.results import SubmissionResult

                problem = f"grader error: {type(answer).__name__}: {answer}"
                kind, payload = Outcome.GRADER_ERROR, SubmissionResult(job.student, self.assignment, problems=[problem])
            on_result(job, kind, payload)
            del waiting[task_id]
            self.missing_since.pop(task_id, None)
            self._retry(async_result.forget, "cleaning up")

    def _send_lost_again(self, waiting: dict[str, Job]) -> None:
        """Send again every waiting task whose message has been in no queue and not unacknowledged for
        LOST_AFTER_S and that has no result."""
        held = self._retry(_messages_held, "looking for lost jobs")
        now = time.monotonic()
        for task_id, job in waiting.items():
            if task_id.encode() in held:
                self.missing_since.pop(task_id, None)
            elif now - self.missing_since.setdefault(task_id, now) >= self.LOST_AFTER_S:
                if self._retry(app.AsyncResult(task_id).ready, "looking for lost jobs"):
                    continue  # it finished meanwhile: collected on the next poll
                self._send(job, task_id)
                self.missing_since.pop(task_id)


def _no_subscription(producer, task_id) -> None:
    """The coordinator's backend.on_task_call: it polls each result by key and never waits on one, so it
    subscribes to nothing. Celery's Redis backend would subscribe to every task's result channel on a
    PubSub connection; when Redis restarts, that PubSub is replaced and the old one, garbage in a
    reference cycle, can be collected while redis-py holds its pool's lock, and its __del__ takes the
    same lock: the coordinator hung for good (redis-py #3081; kombu 5.5 allows no redis-py with the fix)."""


def _messages_held() -> bytes:
    """Every message Redis holds for the workers: the queues and kombu's unacknowledged set (those a
    worker has taken and not yet acknowledged), as one blob to search for task ids."""
    client = _redis()
    pipe = client.pipeline()
    for queue in QUEUES:
        pipe.lrange(queue, 0, -1)
    pipe.hvals("unacked")
    *queued, unacked = pipe.execute()
    return b"\n".join([*(m for messages in queued for m in messages), *unacked])


def run_worker(queue: str, concurrency: int, url: str | None = None, loglevel: str = "INFO") -> None:
    """`course worker`: a Celery worker (prefork) on one queue. A gpu worker starts only with CUDA."""
    if queue == Part.GPU.queue:
        Part.GPU.on_cuda()  # NoCuda where there is none
    configure(url)
    app.worker_main(
        ["worker", "-Q", queue, "-c", str(concurrency), "-P", "prefork", "-n", f"{queue}-{os.getpid()}@%h",
         f"--loglevel={loglevel}", "-E", "--without-mingle", "--without-gossip"]
    )  # fmt: skip
