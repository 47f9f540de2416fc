"""Batch grading: warm workers keep no state between submissions, parallel = serial, resumable, idempotent."""

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import psutil
import pytest

from autograder.authoring.release import release
from autograder.batch.coordinator import grade_batch
from autograder.batch.jobs import JobTable, table_path
from autograder.batch.pool import Job, LocalPool, worker_cpus
from autograder.course import REPO_ROOT
from autograder.grading.grade import AssignmentSource, grade_submission, submissions
from autograder.grading.judge import JudgeCache
from autograder.sandbox.warm import TemplateSandbox, warm_available
from tests.helpers import (
    MEAN_OK,
    NORMALISE_OK,
    SQUARES_OK,
    make_test_squares_crash_the_worker,
    submit,
)
from tests.servers import wait_until


def _outputs(result) -> str:
    return "".join(o.get("text", "") for c in result.autograded["ps1.ipynb"].cells for o in c.get("outputs", []))


@pytest.mark.skipif(not warm_available(), reason="warm templates need root and bubblewrap")
def test_nothing_survives_from_one_submission_to_the_next_on_the_same_worker(released):
    polluter = (
        "import numpy as np, os, time\n"
        "np.allclose = lambda *a, **k: True\n"
        "open('marker.txt', 'w').write('from submission 1')\n"
        "for place in ('/tmp/marker', '/dev/shm/marker'):\n"
        "    try:\n"
        "        open(place, 'w').write('x')\n"
        "    except OSError as error:\n"
        "        print('cannot write', place, type(error).__name__)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(600)\n"
        "    os._exit(0)\n"
    )
    inspector = (
        "import glob, os\n"
        "import numpy as np\n"
        "print('PATCHED' if np.allclose(1, 2) else 'CLEAN NUMPY')\n"
        "found = glob.glob('/scratch/**/marker*', recursive=True)\n"
        "found += glob.glob('/tmp/marker') + glob.glob('/dev/shm/m*')\n"
        "print('LEFTOVER FILES', found) if found else print('NO LEFTOVER FILES')\n"
        "mine = [p for p in os.listdir('/proc') if p.isdigit() and os.stat('/proc/' + p).st_uid == os.getuid()]\n"
        "others = [p for p in mine if int(p) != os.getpid()]\n"
        "print('LEFTOVER PROCESSES', others) if others else print('NO LEFTOVER PROCESSES')\n"
    )
    source = AssignmentSource.load(released, "ps1")
    sandbox = TemplateSandbox([41], preload=source.template_imports())
    template = sandbox.links[41]
    cache = JudgeCache()
    try:
        first = submit(released, "ps1", "first", {"squares": polluter + SQUARES_OK, "mean": MEAN_OK})
        second = submit(released, "ps1", "second", {"squares": inspector + SQUARES_OK, "mean": MEAN_OK})
        grade_submission(source, first, "first", launcher=template.spawn, cache=cache)
        result = grade_submission(source, second, "second", launcher=template.spawn, cache=cache)
    finally:
        sandbox.close()
    text = _outputs(result)
    assert "CLEAN NUMPY" in text and "NO LEFTOVER FILES" in text and "NO LEFTOVER PROCESSES" in text, text
    assert result.score == 6  # normalise was left blank


@pytest.mark.skipif(not warm_available(), reason="warm templates need root and bubblewrap")
def test_a_forked_student_writes_temporary_files_in_its_own_scratch_folder(tmp_path):
    """torch caches tempfile's folder while the template imports it; each student must get its own
    (torch.optim's first step creates a cache folder there: it failed with PermissionError)."""
    sandbox = TemplateSandbox([42], preload=["numpy", "torch"])
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    try:
        with sandbox.links[42].spawn(inputs) as student:
            answer = student.run_cell(
                "import os, tempfile\n"
                "path = os.path.join(tempfile.gettempdir(), 'probe')\n"
                "open(path, 'w').write('x')\n"
                "print('TEMP', os.path.dirname(path))",
                30,
                "probe",
            )
    finally:
        sandbox.close()
    assert answer.get("error") is None, answer["error"]
    assert answer["stdout"].startswith("TEMP /scratch/0/job1"), answer["stdout"]


def _processes_of(uid: int) -> list[int]:
    return [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]


@pytest.mark.skipif(not warm_available(), reason="warm templates need root and bubblewrap")
def test_templates_sharing_a_sandbox_keep_their_students_apart(tmp_path):
    """Two worker slots' templates in one sandbox (numpy imported once): a student of one slot cannot read
    the other slot's inbox or scratch nor kill its student; when one worker goes, its template kills what its
    students left and exits, and the other slot keeps grading."""
    sandbox = TemplateSandbox([43, 44], preload=["numpy"])
    ada_slot, bob_slot = sandbox.links[43], sandbox.links[44]  # /inbox/0, /scratch/0 and /inbox/1, /scratch/1
    empty, answers = tmp_path / "empty", tmp_path / "answers"
    empty.mkdir()
    answers.mkdir()
    (answers / "answers.txt").write_text("bob's answers")
    probe = (
        "import os\n"
        "for path in ['/inbox/1/job1/answers.txt', '/scratch/1/job1/answers.txt']:\n"
        "    try:\n"
        "        open(path).read()\n"
        "        print('READ', path)\n"
        "    except OSError as error:\n"
        "        print('DENIED', path, type(error).__name__)\n"
        "try:\n"
        "    os.kill(BOB, 9)\n"
        "    print('KILLED BOB')\n"
        "except OSError as error:\n"
        "    print('CANNOT KILL BOB', type(error).__name__)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(600)\n"
    )
    try:
        with bob_slot.spawn(answers) as bob:
            bob_pid = bob.run_cell("import os\nprint(os.getpid())", 30)["stdout"].strip()
            with ada_slot.spawn(empty) as ada:
                seen = ada.run_cell("import time\nBOB = " + bob_pid + "\n" + probe, 30)["stdout"]
                assert "READ" not in seen and seen.count("DENIED") == 2, seen
                assert "CANNOT KILL BOB PermissionError" in seen, seen
                assert len(_processes_of(ada_slot.uid)) == 2  # ada and the sleeper she left behind
                ada_slot.close()  # ada's worker goes
                wait_until(lambda: _processes_of(ada_slot.uid) == [], 20, "ada's processes to end", every=0.05)
            assert bob.run_cell("print('still here')", 30)["stdout"] == "still here\n"
        with bob_slot.spawn(answers) as next_student:
            assert next_student.run_cell("print(open('answers.txt').read())", 30)["stdout"] == "bob's answers\n"
    finally:
        sandbox.close()


def _batch(course):
    submit(course, "ps1", "ada")
    submit(course, "ps1", "bob", {})
    submit(course, "ps1", "cy", {"squares": SQUARES_OK, "normalise": NORMALISE_OK})
    submit(course, "ps1", "dee", {"mean": MEAN_OK, "squares": "def squares(n):\n    return [1, 4, 9][:n]"})
    submit(course, "ps1", "eve", {"mean": "while True:\n    pass"})


def _scores(report):
    return {r.student: (r.score, [c.score for c in r.cells]) for r in report.results}


def test_two_workers_give_the_same_results_as_one(released):
    _batch(released)
    one = grade_batch(released, "ps1", workers=1, force=True, show_progress=False)
    two = grade_batch(released, "ps1", workers=2, force=True, show_progress=False)
    assert _scores(one) == _scores(two)
    assert {r.student: r.score for r in two.results} == {"ada": 9, "bob": 0, "cy": 5, "dee": 4, "eve": 0}


def test_unchanged_submissions_are_not_graded_again(released):
    _batch(released)
    first = grade_batch(released, "ps1", workers=2, show_progress=False)
    assert (first.graded, first.skipped) == (5, 0)
    again = grade_batch(released, "ps1", workers=2, show_progress=False)
    assert (again.graded, again.skipped) == (0, 5) and _scores(again) == _scores(first)
    table = JobTable(table_path(released))
    assert table.unsynced("ps1") == set()  # nothing to re-write into the gradebook on a run with nothing new
    table.close()
    (released.root / "gradebook.db").unlink()  # a lost gradebook is rebuilt from the job table
    rebuilt = grade_batch(released, "ps1", workers=2, show_progress=False)
    assert rebuilt.graded == 0 and len(_gradebook_submissions(released)) == 5
    submit(released, "ps1", "bob", {"squares": SQUARES_OK})  # bob resubmits
    changed = grade_batch(released, "ps1", workers=2, show_progress=False)
    assert (changed.graded, changed.skipped) == (1, 4)
    assert {r.student: r.score for r in changed.results}["bob"] == 2
    forced = grade_batch(released, "ps1", workers=2, force=True, show_progress=False)
    assert forced.graded == 5


def _job_rows(course):
    with sqlite3.connect(table_path(course), timeout=30) as db:
        try:
            return db.execute("SELECT student, status, attempts FROM jobs ORDER BY student").fetchall()
        except sqlite3.OperationalError:  # the file exists and the coordinator is still creating the table
            return []


def _gradebook_submissions(course):
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gradebook:
        return sorted(s.student.id for s in gradebook.find_assignment("ps1").submissions)


def _slow_batch(course, count):
    slow = "import time\ntime.sleep(1.5)\n" + SQUARES_OK
    for number in range(count):
        submit(course, "ps1", f"s{number:02d}", {"squares": slow, "mean": MEAN_OK, "normalise": NORMALISE_OK})


def _grade_command(course, *extra):
    return [sys.executable, "-m", "autograder.cli", "grade", "ps1", "--course", str(course.root), *extra]


def _holders_of_pipe(inode: int) -> list[int]:
    holders = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if f"pipe:[{inode}]" in links:
            holders.append(int(pid))
    return holders


def test_the_command_leaves_nothing_holding_its_output_when_it_exits(released):
    """`course grade | tee log` ends when the command does: the forkserver (torch imported) would otherwise
    keep the pipe open for the 0.4 s it takes to tear torch down after the command has gone."""
    submit(released, "ps1", "ada")
    process = subprocess.Popen(_grade_command(released, "--workers", "2"), stdout=subprocess.PIPE)
    inode = os.fstat(process.stdout.fileno()).st_ino
    assert process.wait(timeout=300) == 0
    holders = [psutil.Process(pid) for pid in _holders_of_pipe(inode) if pid != os.getpid()]
    assert holders == [], [p.cmdline() for p in holders]
    assert b"graded 1 submission(s)" in process.stdout.read()


def test_kill_9_mid_batch_then_rerun_grades_each_submission_once(released):
    _slow_batch(released, 8)
    process = subprocess.Popen(
        _grade_command(released, "--workers", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_until(lambda: table_path(released).exists() and sum(r[1] == "done" for r in _job_rows(released)) >= 2,
               180, "two finished submissions")  # fmt: skip
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {r[0] for r in _job_rows(released) if r[1] == "done"}
    assert 2 <= len(done_before) < 8, "the kill should land mid-batch"

    rerun = subprocess.run(_grade_command(released, "--workers", "2"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"graded {8 - len(done_before)} submission(s), {len(done_before)} unchanged" in rerun.stdout
    rows = _job_rows(released)
    assert len(rows) == 8 and all(status == "done" for _, status, _ in rows)
    assert all(attempts == 1 for student, _, attempts in rows if student in done_before)
    assert _gradebook_submissions(released) == [f"s{n:02d}" for n in range(8)]
    csv_rows = (released.reports_dir / "ps1" / "grades.csv").read_text().strip().splitlines()[1:]
    assert len(csv_rows) == 8 and all(",9," in row for row in csv_rows)


def test_ctrl_c_stops_cleanly_and_leaves_the_job_table_consistent(released):
    _slow_batch(released, 6)
    process = subprocess.Popen(
        _grade_command(released, "--workers", "1"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_until(lambda: table_path(released).exists() and any(r[1] == "done" for r in _job_rows(released)),
               180, "a finished submission")  # fmt: skip
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "run the same command again" in output
    assert not any(status == "running" for _, status, _ in _job_rows(released))
    rerun = subprocess.run(_grade_command(released), capture_output=True, text=True)
    assert rerun.returncode == 0
    assert all(status == "done" for _, status, _ in _job_rows(released))


def test_a_worker_that_dies_is_replaced_and_the_submission_recorded(released):
    # A (trusted) test that crashes the grading worker when it meets one particular answer: the pool
    # must retry, give up after a few attempts, record the reason, and grade everything else.
    make_test_squares_crash_the_worker(released)
    release(released, "ps1")
    submit(released, "ps1", "good")
    submit(released, "ps1", "crasher", {"squares": "def squares(n):\n    return [42]"})
    report = grade_batch(released, "ps1", workers=2, show_progress=False)
    by_student = {r.student: r for r in report.results}
    assert by_student["good"].score == 9
    assert by_student["crasher"].score == 0
    assert "gave up after 3 attempts" in by_student["crasher"].problems[0]
    assert dict((s, a) for s, _, a in _job_rows(released))["crasher"] == 3
    assert not _sandboxes_below(psutil.Process())  # no template left running, whoever launched it


def test_a_worker_whose_warm_up_fails_keeps_grading(released, monkeypatch):
    """prepare() only warms up: when it fails (say a template that cannot start), the worker must not die
    before its first submission (the pool would replace it again and again); grading meets the error, if
    it is still there, and records it as that submission's result."""
    from autograder.batch import pool

    def broken_prepare(self, assignment, part="all"):
        raise RuntimeError("the sandbox could not start")

    monkeypatch.setattr(pool.GradingSlot, "prepare", broken_prepare)
    monkeypatch.setattr(pool, "limit_threads", lambda: None)  # the worker runs in a thread of this process
    folder = submit(released, "ps1", "ada")
    ours, theirs = multiprocessing.Pipe()
    worker = threading.Thread(target=pool.worker_main, args=(0, str(released.root), "ps1", theirs), daemon=True)
    worker.start()
    ours.send(("ada", str(folder), "all", False))
    assert ours.poll(60), "the worker died in its warm-up"
    kind, result = ours.recv()
    ours.send(None)
    worker.join(timeout=30)
    assert kind == "done" and result.score == 9


@pytest.mark.skipif(not warm_available(), reason="warm templates need root and bubblewrap")
def test_students_run_at_normal_priority_though_templates_import_at_a_low_one(released):
    """Templates import numpy/torch at niceness 10 (warm.IMPORT_NICENESS), so that the forkserver goes first
    on a machine short of cores; the zygote resets itself to 0 before it forks students."""
    submit(released, "ps1", "ada", extra_cells=["import os\nprint('niceness', os.getpriority(os.PRIO_PROCESS, 0))"])
    result = {r.student: r for r in grade_batch(released, "ps1", workers=1, show_progress=False).results}["ada"]
    assert result.score == 9
    assert "niceness 0" in (released.autograded_dir / "ada" / "ps1" / "ps1.ipynb").read_text()


def _sandboxes_below(process) -> list:
    return [p for p in process.children(recursive=True) if p.name() == "bwrap"]


@pytest.mark.skipif(not warm_available(), reason="warm templates need root and bubblewrap")
def test_a_pool_grades_with_warm_templates_and_leaves_no_sandbox_behind(released):
    """The pool's warm templates grade every submission and are gone once the pool has run."""
    for student in ("ada", "bob", "cy"):
        submit(released, "ps1", student)
    jobs = [Job(s, f, "digest") for s, f in submissions(released, "ps1")]
    pool = LocalPool(released, "ps1", workers=2, job_timeout_s=120)
    pool.start(len(jobs))
    results = {}
    pool.run(jobs, lambda job: 1, lambda job, kind, payload: results.update({job.student: payload.score}))
    assert results == {"ada": 9, "bob": 9, "cy": 9}
    assert not _sandboxes_below(psutil.Process())


def test_worker_cpus_pins_only_two_or_more_workers_with_a_cpu_each():
    allowed = sorted(os.sched_getaffinity(0))
    assert worker_cpus(1) is None  # one worker may move, and so may the coordinator beside it
    assert worker_cpus(len(allowed) + 1) is None  # more workers than CPUs: the scheduler shares them out
    if len(allowed) >= 2:
        assert worker_cpus(2) == allowed[:2]


_FORKSERVER_PROBE = """
import json, sys
from autograder.batch import judge_server
from tests.helpers import report_modules
judge_server.start(sys.argv[1], sys.argv[2])
ours, theirs = judge_server.context().Pipe()
worker = judge_server.context().Process(target=report_modules, args=(["torch", "torch._dynamo"], theirs))
worker.start()
seen = ours.recv()
worker.join()
judge_server.stop()
print(json.dumps({"worker": seen, "command_imported_torch": "torch" in sys.modules}))
"""


def _fork_from_forkserver(course_root, assignment) -> dict:
    done = subprocess.run([sys.executable, "-c", _FORKSERVER_PROBE, str(course_root), assignment],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_forkserver_started_first_imports_what_the_assignments_judges_need():
    """`course grade` starts the forkserver before reading the assignment itself; the forkserver works out
    the judges' imports (torch and torch._dynamo for a1) and every worker forked from it has them, while
    the command's own process never imports torch and the workers do not inherit the preload variable."""
    seen = _fork_from_forkserver(REPO_ROOT, "a1_backprop")
    assert seen == {"worker": {"imported": ["torch", "torch._dynamo"], "env": False}, "command_imported_torch": False}


def test_a_forkserver_started_for_a_broken_assignment_still_forks_workers(tmp_path):
    """The command reports a broken course itself; the forkserver must not die of it."""
    seen = _fork_from_forkserver(tmp_path, "no_such_assignment")
    assert seen == {"worker": {"imported": [], "env": False}, "command_imported_torch": False}
