"""The job table: one row per (assignment, student, part) in SQLite next to the gradebook.

A part is "all" (the whole submission graded in one go) or "cpu"/"gpu" (see parts.py); a submission's
result is its "all" row, or its "cpu" row merged with its "gpu" row once the GPU part is done.

It makes `course grade` resumable and idempotent: a submission whose content hash (its files, the
assignment's source, the grader's version) was graded is not run again unless forced; a row left
'running' by a killed batch is simply run again; the stored result lets the reports and the gradebook
be rebuilt without re-grading anything. With the Celery backend a row also keeps the id of the task in
flight, so a coordinator that was killed picks its tasks' results up again instead of enqueuing twice.
The coordinator is the table's only writer.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from autograder.course import Course, CourseError
from autograder.grading import parts
from autograder.grading.parts import Part
from autograder.grading.results import SubmissionResult

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another (two coordinators, a Celery collector)
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    assignment   TEXT NOT NULL,
    student      TEXT NOT NULL,
    part         TEXT NOT NULL DEFAULT 'all',  -- all | cpu | gpu
    content_hash TEXT NOT NULL,
    status       TEXT NOT NULL,          -- pending | queued | running | done | failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    task_id      TEXT,                   -- the Celery task in flight (queued/running), else NULL
    result       TEXT,                   -- SubmissionResult as JSON (autograded notebooks are on disk)
    updated      REAL NOT NULL,
    PRIMARY KEY (assignment, student, part)
)
"""
# Which job rows the gradebook has seen: a new run re-writes into the gradebook only what changed since
# (a run killed between the job table and the gradebook leaves exactly those rows behind).
SYNCED_SCHEMA = """
CREATE TABLE IF NOT EXISTS gradebook_synced (
    assignment TEXT NOT NULL,
    student    TEXT NOT NULL,
    updated    REAL NOT NULL,                -- the student's latest jobs.updated written to the gradebook
    PRIMARY KEY (assignment, student)
)
"""
# A table written before parts existed: its rows become "all" parts.
MIGRATE_V1 = """
ALTER TABLE jobs RENAME TO jobs_v1;
{schema};
INSERT INTO jobs (assignment, student, part, content_hash, status, attempts, result, updated)
    SELECT assignment, student, 'all', content_hash, status, attempts, result, updated FROM jobs_v1;
DROP TABLE jobs_v1;
"""


def table_path(course: Course) -> Path:
    url = course.db_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / "grading_jobs.db"
    return course.root / "grading_jobs.db"


def result_to_json(result: SubmissionResult) -> str:
    return json.dumps(result.to_dict())


def result_from_json(text: str) -> SubmissionResult:
    return SubmissionResult.from_dict(json.loads(text))


class JobTable:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._use_wal()
        # In WAL mode, NORMAL survives a killed process (kill -9 included); only a power cut may lose the
        # last commits, and those submissions are then graded again. FULL would fsync every result.
        self.db.execute("PRAGMA synchronous=NORMAL")
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(jobs)")]
        if columns and "part" not in columns:
            self.db.executescript("BEGIN;" + MIGRATE_V1.format(schema=SCHEMA.strip()) + "COMMIT;")
        self.db.execute(SCHEMA)
        self.db.execute(SYNCED_SCHEMA)

    def _use_wal(self) -> None:
        """Switch to WAL. Two coordinators opening a new job table at the same moment (two `course grade`
        runs started together) can get "database is locked" at once here: SQLite does not always call the
        busy handler while the journal mode changes. Try again, up to the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        self.db.close()

    def row(self, assignment: str, student: str, part: str = "all") -> tuple | None:
        """(content_hash, status, attempts, result, task_id) of one part, or None."""
        return self.db.execute(
            "SELECT content_hash, status, attempts, result, task_id FROM jobs "
            "WHERE assignment = ? AND student = ? AND part = ?",
            (assignment, student, part),
        ).fetchone()

    def is_done(self, assignment: str, student: str, digest: str, part: str = "all") -> bool:
        row = self.row(assignment, student, part)
        return row is not None and row[0] == digest and row[1] in ("done", "failed")

    def start(self, assignment: str, student: str, digest: str, part: str = "all", task_id: str | None = None) -> int:
        """Mark a part running (or, with a Celery task id, queued); returns its attempt number (attempts on
        the same content accumulate)."""
        row = self.row(assignment, student, part)
        attempts = (row[2] if row is not None and row[0] == digest else 0) + 1
        self.db.execute(
            "INSERT INTO jobs (assignment, student, part, content_hash, status, attempts, task_id, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (assignment, student, part) DO UPDATE SET "
            "content_hash = excluded.content_hash, status = excluded.status, attempts = excluded.attempts, "
            "task_id = excluded.task_id, updated = excluded.updated",
            (assignment, student, part, digest, "queued" if task_id else "running", attempts, task_id, time.time()),
        )
        return attempts

    def note_attempts(self, assignment: str, student: str, part: str, attempts: int) -> None:
        """A task reports how many times a worker started it: keep the larger count."""
        self.db.execute(
            "UPDATE jobs SET attempts = MAX(attempts, ?) WHERE assignment = ? AND student = ? AND part = ?",
            (attempts, assignment, student, part),
        )

    def finish(
        self, assignment: str, student: str, result: SubmissionResult, status: str = "done", part: str = "all"
    ) -> None:
        self.db.execute(
            "UPDATE jobs SET status = ?, result = ?, task_id = NULL, updated = ? "
            "WHERE assignment = ? AND student = ? AND part = ?",
            (status, result_to_json(result), time.time(), assignment, student, part),
        )

    def mark_synced(self, assignment: str, student: str) -> None:
        """The gradebook now holds this student's latest result."""
        self.db.execute(
            "INSERT OR REPLACE INTO gradebook_synced (assignment, student, updated) "
            "SELECT assignment, student, MAX(updated) FROM jobs WHERE assignment = ? AND student = ?",
            (assignment, student),
        )

    def unsynced(self, assignment: str) -> set[str]:
        """Students whose job rows changed after the gradebook last got their result."""
        rows = self.db.execute(
            "SELECT j.student FROM jobs j LEFT JOIN gradebook_synced g "
            "ON g.assignment = j.assignment AND g.student = j.student "
            "WHERE j.assignment = ? GROUP BY j.student HAVING MAX(j.updated) > COALESCE(MAX(g.updated), 0)",
            (assignment,),
        )
        return {student for (student,) in rows}

    def release_running(self, assignment: str) -> None:
        """After an interrupted batch: running local jobs go back to pending (they will run again). Parts
        with a Celery task in flight stay as they are: the next coordinator collects their results."""
        self.db.execute(
            "UPDATE jobs SET status = 'pending' WHERE assignment = ? AND status = 'running' AND task_id IS NULL",
            (assignment,),
        )

    def in_flight(self, assignment: str) -> dict[tuple[str, str], tuple[str, str]]:
        """(student, part) -> (content_hash, task_id) of every part with a Celery task in flight."""
        rows = self.db.execute(
            "SELECT student, part, content_hash, task_id FROM jobs "
            "WHERE assignment = ? AND status IN ('queued', 'running') AND task_id IS NOT NULL",
            (assignment,),
        )
        return {(student, part): (digest, task_id) for student, part, digest, task_id in rows}

    def result(self, assignment: str, student: str) -> SubmissionResult | None:
        """A submission's latest result: its "all" part, or its "cpu" part merged with its "gpu" part
        (whose tests stay pending until that is done). The parts of its latest content count."""
        rows = self.db.execute(
            "SELECT part, content_hash, status, result FROM jobs WHERE assignment = ? AND student = ? "
            "ORDER BY updated DESC",
            (assignment, student),
        ).fetchall()
        if not rows:
            return None
        latest = rows[0][1]
        done = {part: text for part, digest, status, text in rows if digest == latest and status in ("done", "failed")}
        base = parts.base_part(list(done))  # the newer of "all" and "cpu"
        if base is None:
            return None
        if base is Part.ALL:
            return result_from_json(done[Part.ALL])
        gpu = done.get(Part.GPU)
        return parts.merge(result_from_json(done[Part.CPU]), result_from_json(gpu) if gpu is not None else None)

    def results(self, assignment: str) -> list[SubmissionResult]:
        students = self.db.execute(
            "SELECT DISTINCT student FROM jobs WHERE assignment = ? ORDER BY student", (assignment,)
        ).fetchall()
        found = (self.result(assignment, student) for (student,) in students)
        return [result for result in found if result is not None]

    def count(self, assignment: str) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM jobs WHERE assignment = ? GROUP BY status", (assignment,))
        return dict(rows.fetchall())


def graded_results(course: Course, assignment: str) -> list[SubmissionResult]:
    """Every graded submission of `assignment` in the job table (what feedback and the report read)."""
    if not table_path(course).exists():
        raise CourseError(f"{table_path(course)}: not found; run `course grade {assignment}` first")
    table = JobTable(table_path(course))
    try:
        results = table.results(assignment)
    finally:
        table.close()
    if not results:
        raise CourseError(f"no graded submissions of {assignment}; run `course grade {assignment}` first")
    return results
