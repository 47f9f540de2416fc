"""The job table: parts merged into one result, tasks in flight, and tables written before parts existed."""

import json
import multiprocessing
import sqlite3

from autograder.batch.jobs import JobTable, result_to_json
from autograder.grading.results import CellResult, SubmissionResult


def _result(*cells: CellResult) -> SubmissionResult:
    return SubmissionResult("ada", "ps2", cells=list(cells))


def test_a_cpu_part_is_pending_until_its_gpu_part_is_merged_in(tmp_path):
    table = JobTable(tmp_path / "jobs.db")
    table.start("ps2", "ada", "h1", "cpu", task_id="t-cpu")
    table.start("ps2", "ada", "h1", "gpu", task_id="t-gpu")
    assert table.in_flight("ps2") == {("ada", "cpu"): ("h1", "t-cpu"), ("ada", "gpu"): ("h1", "t-gpu")}
    table.release_running("ps2")  # a new coordinator keeps tasks in flight
    assert len(table.in_flight("ps2")) == 2
    assert table.result("ps2", "ada") is None

    pending = CellResult("ps2.ipynb", "test_train", 3, None, "waiting for GPU runner", gpu=True, pending=True)
    table.finish("ps2", "ada", _result(CellResult("ps2.ipynb", "test_double", 2, 2.0), pending), part="cpu")
    waiting = table.result("ps2", "ada")
    assert (waiting.score, waiting.waiting_for_gpu) == (2, [pending])
    assert table.in_flight("ps2") == {("ada", "gpu"): ("h1", "t-gpu")}

    table.finish("ps2", "ada", _result(CellResult("ps2.ipynb", "test_train", 3, 3.0, gpu=True)), part="gpu")
    merged = table.result("ps2", "ada")
    expected = [("test_double", 2, False), ("test_train", 3, False)]
    assert [(c.grade_id, c.score, c.pending) for c in merged.cells] == expected
    assert table.is_done("ps2", "ada", "h1", "cpu") and table.is_done("ps2", "ada", "h1", "gpu")
    assert not table.is_done("ps2", "ada", "h2", "gpu")  # resubmitted: graded again


def test_a_table_from_before_parts_keeps_its_rows_as_all_parts(tmp_path):
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE jobs (assignment TEXT NOT NULL, student TEXT NOT NULL, content_hash TEXT NOT NULL, "
            "status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, result TEXT, updated REAL NOT NULL, "
            "PRIMARY KEY (assignment, student))"
        )
        old = _result(CellResult("ps2.ipynb", "test_double", 2, 2.0))
        db.execute("INSERT INTO jobs VALUES ('ps2', 'ada', 'h1', 'done', 1, ?, 1.0)", (result_to_json(old),))
    table = JobTable(path)
    assert table.is_done("ps2", "ada", "h1") and table.row("ps2", "ada")[2] == 1
    assert json.loads(result_to_json(table.result("ps2", "ada"))) == json.loads(result_to_json(old))


def _open_job_table(path, barrier, errors) -> None:
    barrier.wait()
    try:
        JobTable(path).close()
    except sqlite3.OperationalError as error:
        errors.put(str(error))


def test_two_coordinators_can_open_a_new_job_table_at_the_same_moment(tmp_path):
    """Two `course grade` runs started together (tests/test_postgres.py does this) both create the job
    table; switching a new SQLite file to WAL could fail at once with "database is locked" (about one
    process in three with two `course grade` commands; rarer with forked openers, hence 200 rounds), because
    SQLite does not always wait on its busy handler there."""
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for round_ in range(200):
        barrier = context.Barrier(2)
        path = tmp_path / f"jobs-{round_}.db"
        openers = [context.Process(target=_open_job_table, args=(path, barrier, errors)) for _ in range(2)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(timeout=60)
            assert opener.exitcode == 0
    assert errors.empty(), errors.get()
