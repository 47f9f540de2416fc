"""The job table: one row per (assignment, student) in SQLite next to the gradebook.

It makes `course grade` resumable and idempotent: a submission whose content hash (its files, the
assignment's source, the grader's version) was graded is not run again unless forced; a row left
'running' by a killed batch is simply run again; the stored result lets the reports and the gradebook
be rebuilt without re-grading anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import time
from pathlib import Path

from autograder.course import Course
from autograder.results import CellResult, SubmissionResult

GRADER_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    assignment   TEXT NOT NULL,
    student      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status       TEXT NOT NULL,          -- pending | running | done | failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    result       TEXT,                   -- SubmissionResult as JSON (autograded notebooks are on disk)
    updated      REAL NOT NULL,
    PRIMARY KEY (assignment, student)
)
"""


def table_path(course: Course) -> Path:
    url = course.db_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / "grading_jobs.db"
    return course.root / "grading_jobs.db"


def content_hash(folder: Path, source_digest: str) -> str:
    digest = hashlib.sha256(f"{GRADER_VERSION}\0{source_digest}\0".encode())
    if folder.is_dir() and not folder.is_symlink():
        for path in sorted(folder.rglob("*")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            if path.is_symlink():
                digest.update(b"symlink\0" + str(path.readlink()).encode())
            elif path.is_file():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    else:
        digest.update(b"not a folder" if folder.exists() else b"missing")
    return digest.hexdigest()


def result_to_json(result: SubmissionResult) -> str:
    data = dataclasses.asdict(dataclasses.replace(result, autograded={}))
    return json.dumps(data)


def result_from_json(text: str) -> SubmissionResult:
    data = json.loads(text)
    data["cells"] = [CellResult(**cell) for cell in data["cells"]]
    return SubmissionResult(**data)


class JobTable:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def row(self, assignment: str, student: str) -> tuple | None:
        return self.db.execute(
            "SELECT content_hash, status, attempts, result FROM jobs WHERE assignment = ? AND student = ?",
            (assignment, student),
        ).fetchone()

    def is_done(self, assignment: str, student: str, digest: str) -> bool:
        row = self.row(assignment, student)
        return row is not None and row[0] == digest and row[1] in ("done", "failed")

    def start(self, assignment: str, student: str, digest: str) -> int:
        """Mark a job running; returns its attempt number (attempts on the same content accumulate)."""
        row = self.row(assignment, student)
        attempts = (row[2] if row is not None and row[0] == digest else 0) + 1
        self.db.execute(
            "INSERT INTO jobs (assignment, student, content_hash, status, attempts, updated) "
            "VALUES (?, ?, ?, 'running', ?, ?) ON CONFLICT (assignment, student) DO UPDATE SET "
            "content_hash = excluded.content_hash, status = 'running', attempts = excluded.attempts, "
            "updated = excluded.updated",
            (assignment, student, digest, attempts, time.time()),
        )
        return attempts

    def finish(self, assignment: str, student: str, result: SubmissionResult, status: str = "done") -> None:
        self.db.execute(
            "UPDATE jobs SET status = ?, result = ?, updated = ? WHERE assignment = ? AND student = ?",
            (status, result_to_json(result), time.time(), assignment, student),
        )

    def release_running(self, assignment: str) -> None:
        """After an interrupted batch: running jobs go back to pending (they will run again)."""
        self.db.execute("UPDATE jobs SET status = 'pending' WHERE assignment = ? AND status = 'running'", (assignment,))

    def results(self, assignment: str) -> list[SubmissionResult]:
        rows = self.db.execute(
            "SELECT result FROM jobs WHERE assignment = ? AND status IN ('done', 'failed') ORDER BY student",
            (assignment,),
        ).fetchall()
        return [result_from_json(row[0]) for row in rows]

    def count(self, assignment: str) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM jobs WHERE assignment = ? GROUP BY status", (assignment,))
        return dict(rows.fetchall())
