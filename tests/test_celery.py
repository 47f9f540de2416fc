"""The Celery backend with real servers: Debian's redis-server (persistence on) on a loopback port, real
`course worker` processes, `course grade --backend celery` as the coordinator. The gpu-queue worker runs
with COURSE_FAKE_CUDA=1 (test-only: it believes it has CUDA). Every test checks that each submission is
graded once, none is lost, and the scores are those of a local run."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from autograder.authoring.release import release
from autograder.batch.coordinator import grade_batch
from autograder.batch.jobs import table_path
from autograder.course import Course
from tests.conftest import FIXTURE_COURSE
from tests.helpers import MEAN_OK, NORMALISE_OK, SQUARES_OK, make_test_squares_crash_the_worker, submit
from tests.servers import RedisServer, Worker, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

VISIBILITY_S = "20"  # longer than any job of these small courses; a vanished worker's task returns after it


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server):
    if not redis_server.ping():  # a test restarted it and failed before it came back
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def workers(broker, tmp_path):
    started = []

    def start(queue: str, concurrency: int = 1, **env) -> Worker:
        log = tmp_path / f"worker-{queue}-{len(started)}.log"
        worker = Worker(queue, broker, log, concurrency, {"COURSE_VISIBILITY_TIMEOUT": VISIBILITY_S, **env})
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


def coordinator(course: Course, assignment: str, broker: str, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "autograder.cli", "grade", assignment, "--course", str(course.root),
            "--backend", "celery", "--broker", broker, *extra]  # fmt: skip
    env = {**os.environ, "COURSE_VISIBILITY_TIMEOUT": VISIBILITY_S}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 150) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode in (0, 1), output
    return output


def rows(course: Course, part: str | None = None) -> list[tuple]:
    if not table_path(course).exists():
        return []
    with sqlite3.connect(table_path(course), timeout=30) as db:
        try:
            found = db.execute("SELECT student, part, status, attempts FROM jobs ORDER BY student, part").fetchall()
        except sqlite3.OperationalError:  # the coordinator is creating the table
            return []
    return [row for row in found if part is None or row[1] == part]


def done_count(course: Course, part: str = "all") -> int:
    return sum(row[2] in ("done", "failed") for row in rows(course, part))


def scores(results) -> dict:
    return {r.student: (r.score, [(c.grade_id, c.score, c.pending) for c in r.cells], r.problems) for r in results}


def local_scores(course: Course, assignment: str, tmp_path) -> dict:
    """The same batch graded by the local backend, in a copy of the course."""
    copy = tmp_path / "local-copy"
    shutil.copytree(course.root, copy, ignore=shutil.ignore_patterns("grading_jobs.db*", "gradebook.db"))
    return scores(grade_batch(Course.load(copy), assignment, workers=1, force=True, show_progress=False).results)


def celery_scores(course: Course, assignment: str) -> dict:
    from autograder.batch.jobs import JobTable

    table = JobTable(table_path(course))
    try:
        return scores(table.results(assignment))
    finally:
        table.close()


def gradebook_students(course: Course, assignment: str) -> list[str]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gradebook:
        return sorted(s.student.id for s in gradebook.find_assignment(assignment).submissions)


@pytest.fixture
def ps2(released):
    submit(released, "ps2", "ada")
    submit(released, "ps2", "bob", {"double": "def double(x):\n    return x", "train": "w = 3.0"})
    submit(released, "ps2", "cy", {"double": "def double(x):\n    return x + x", "train": "w = 1.0"})
    return released


def test_cpu_scores_arrive_without_a_gpu_worker_and_gpu_tests_complete_when_it_starts(ps2, broker, workers, tmp_path):
    workers("cpu")
    # --no-wait: back as soon as the CPU parts are graded; the GPU parts stay queued
    output = finish(coordinator(ps2, "ps2", broker, "--no-wait"))
    assert "3 GPU test(s) in 3 submission(s) waiting for GPU runner" in output
    assert [row[2] for row in rows(ps2, "cpu")] == ["done"] * 3
    assert [row[2] for row in rows(ps2, "gpu")] == ["queued"] * 3
    ada = (ps2.reports_dir / "ps2" / "results" / "ada.json").read_text()
    assert '"output": "waiting for GPU runner"' in ada and '"score": 2.0' in ada
    assert "ada,2,5,2,waiting for GPU runner," in (ps2.reports_dir / "ps2" / "grades.csv").read_text()

    process = coordinator(ps2, "ps2", broker)  # waits for the GPU parts it finds queued
    try:
        time.sleep(3)  # the GPU tests wait: nothing takes them
        assert process.poll() is None
        assert [row[2] for row in rows(ps2, "gpu")] == ["queued"] * 3
        workers("gpu", COURSE_FAKE_CUDA="1")  # a CUDA runner joins
        output = finish(process)
    finally:
        process.kill()
    assert "waiting for GPU runner" not in output
    assert {row[2] for row in rows(ps2)} == {"done"} and len(rows(ps2)) == 6
    assert all(row[3] == 1 for row in rows(ps2))  # each part sent once
    graded = celery_scores(ps2, "ps2")
    assert {student: total for student, (total, _, _) in graded.items()} == {"ada": 5, "bob": 3, "cy": 2}
    assert graded == local_scores(ps2, "ps2", tmp_path)
    assert gradebook_students(ps2, "ps2") == ["ada", "bob", "cy"]
    assert "ada,5,5,2,3," in (ps2.reports_dir / "ps2" / "grades.csv").read_text()


def _slow_ps1(course: Course) -> Course:
    """Five ps1 submissions that take a second or two each, with different scores."""
    release(course, "ps1", execute_solutions=True)
    slow = "import time\ntime.sleep(1.0)\n" + SQUARES_OK
    answers = {"squares": slow, "mean": MEAN_OK, "normalise": NORMALISE_OK}
    wrong = {1: {"mean": "def mean(xs):\n    return 0"}, 3: {"normalise": "def normalise(v):\n    return v"}}
    for number in range(5):
        submit(course, "ps1", f"s{number}", {**answers, **wrong.get(number, {})})
    return course


@pytest.fixture
def slow_ps1(fixture_course):
    return _slow_ps1(fixture_course)


@pytest.fixture(scope="module")
def slow_ps1_local(tmp_path_factory):
    """The local run the fault tests compare with (graded once for the module)."""
    root = tmp_path_factory.mktemp("slow-local") / "course"
    shutil.copytree(FIXTURE_COURSE, root)
    course = _slow_ps1(Course.load(root))
    return scores(grade_batch(course, "ps1", workers=2, show_progress=False).results)


def check_graded_once(course, local):
    assert rows(course) == [(f"s{n}", "all", "done", rows(course)[n][3]) for n in range(5)]
    assert celery_scores(course, "ps1") == local
    assert gradebook_students(course, "ps1") == [f"s{n}" for n in range(5)]
    assert len((course.reports_dir / "ps1" / "grades.csv").read_text().splitlines()) == 6


def test_a_worker_killed_mid_job_has_its_job_redelivered_and_graded_once(slow_ps1, slow_ps1_local, broker, workers,
                                                                          redis_server):  # fmt: skip
    worker = workers("cpu")
    process = coordinator(slow_ps1, "ps1", broker)
    try:
        wait_until(lambda: done_count(slow_ps1) >= 1, 120, "a first result")
        # the next task has started (its own start counter exists) and is not finished
        keys = redis_server.client()
        wait_until(lambda: len(keys.keys("course:attempts:*")) >= 1, 60, "a task in progress")
        time.sleep(0.5)
        for child in worker.pool_processes():
            child.send_signal(signal.SIGKILL)  # kill -9 the process grading it
        finish(process)
    finally:
        process.kill()
    check_graded_once(slow_ps1, slow_ps1_local)
    assert sorted(row[3] for row in rows(slow_ps1)) == [1, 1, 1, 1, 2]  # one job was started twice
    assert worker.succeeded() == 5  # and each finished exactly once


def test_a_whole_worker_killed_mid_job_has_its_job_redelivered_to_another(fixture_course, broker, workers,
                                                                          redis_server, tmp_path):  # fmt: skip
    # kill -9 of the worker's main process too (a machine that died): nobody rejects the job; a worker
    # hands it out again once it has been unacknowledged for the visibility timeout (kombu looks when a
    # worker starts, then every 100 s): here a short one, and the next worker starts after it.
    course = _slow_ps1(fixture_course)
    first = workers("cpu")
    process = coordinator(course, "ps1", broker)
    try:
        wait_until(lambda: len(redis_server.client().keys("course:attempts:*")) >= 1, 120, "a task in progress")
        time.sleep(0.5)
        first.kill()
        time.sleep(4)
        second = workers("cpu", concurrency=2, COURSE_VISIBILITY_TIMEOUT="3")
        finish(process, timeout=200)
    finally:
        process.kill()
    assert {row[2] for row in rows(course)} == {"done"} and len(rows(course)) == 5
    assert sorted(row[3] for row in rows(course)) == [1, 1, 1, 1, 2]
    assert gradebook_students(course, "ps1") == [f"s{n}" for n in range(5)]
    assert first.succeeded() + second.succeeded() == 5


def test_flower_shows_the_workers(broker, workers, tmp_path):
    import urllib.request

    from tests.servers import free_port

    workers("cpu")
    port = free_port()
    flower = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "celery"), "-A", "autograder.batch.celery_app", "flower",
         "--address=127.0.0.1", f"--port={port}"],
        env={**os.environ, "COURSE_BROKER_URL": broker}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def page(path: str) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.read().decode()
        except OSError:
            return ""

    try:
        assert wait_until(lambda: page("/healthcheck"), 60, "Flower") == "OK"
        wait_until(lambda: "cpu-" in page("/workers"), 60, "the worker on Flower's page")
    finally:
        flower.terminate()
        flower.wait(timeout=20)


def test_restarting_redis_mid_batch_does_not_stop_the_batch(slow_ps1, slow_ps1_local, broker, workers, redis_server):
    workers("cpu", concurrency=2)
    process = coordinator(slow_ps1, "ps1", broker)
    try:
        wait_until(lambda: done_count(slow_ps1) >= 2, 120, "two results")
        # the coordinator polls results by key: a result subscription would be a PubSub that redis-py can
        # deadlock on once Redis restarts (celery_app._no_subscription)
        assert not [c for c in redis_server.client().pubsub_channels() if c.startswith(b"celery-task-meta-")]
        redis_server.restart(down_s=2)
        # a message popped as Redis stopped is sent again by the coordinator (LOST_AFTER_S); one taken
        # and not acknowledged comes back after the visibility timeout, at kombu's restore cadence
        finish(process, timeout=300)
    finally:
        process.kill()
    check_graded_once(slow_ps1, slow_ps1_local)


def test_a_message_lost_by_redis_is_sent_again(slow_ps1, slow_ps1_local, broker, workers, redis_server):
    # What Redis stopping between a worker's BRPOP and kombu's unacked bookkeeping leaves: a task whose
    # message is in no queue and in no worker's hands. Simulated by popping one queued message.
    process = coordinator(slow_ps1, "ps1", broker)
    try:
        client = redis_server.client()
        wait_until(lambda: client.llen("cpu") == 5, 60, "five queued jobs")
        assert client.rpop("cpu")
        workers("cpu", concurrency=2)
        finish(process, timeout=150)
    finally:
        process.kill()
    check_graded_once(slow_ps1, slow_ps1_local)


def test_a_killed_coordinator_resumes_from_the_job_table(slow_ps1, slow_ps1_local, broker, workers):
    worker = workers("cpu", concurrency=2)
    first = coordinator(slow_ps1, "ps1", broker)
    wait_until(lambda: done_count(slow_ps1) >= 1, 120, "a first result")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert done_count(slow_ps1) < 5
    output = finish(coordinator(slow_ps1, "ps1", broker))
    assert "graded" in output
    check_graded_once(slow_ps1, slow_ps1_local)
    assert all(row[3] == 1 for row in rows(slow_ps1))  # nothing was sent twice
    assert worker.succeeded() == 5


def test_a_submission_that_kills_its_worker_is_recorded_failed_after_three_attempts(fixture_course, broker, workers):
    # The same course and submissions as test_batch.py's test_a_worker_that_dies_is_replaced_and_the_submission_
    # recorded, whose local run gives exactly these results (not graded again here: crashes are slow).
    make_test_squares_crash_the_worker(fixture_course)
    release(fixture_course, "ps1", execute_solutions=True)
    submit(fixture_course, "ps1", "good")
    submit(fixture_course, "ps1", "crasher", {"squares": "def squares(n):\n    return [42]"})
    workers("cpu")
    output = finish(coordinator(fixture_course, "ps1", broker))
    graded = celery_scores(fixture_course, "ps1")
    assert graded["good"][0] == 9 and graded["crasher"][0] == 0
    assert "gave up after 3 attempts" in graded["crasher"][2][0] and "crasher" in output
    assert {row[0]: row[3] for row in rows(fixture_course)}["crasher"] == 3
    assert [score for _, score, _ in graded["crasher"][1]] == [0, 0, 0, None]  # tests 0, written answer waits
