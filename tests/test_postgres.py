"""nbgrader's gradebook on a real PostgreSQL server (Debian's, started on a loopback port for these tests):
`course grade` writes it, also from two graders at once, and `nbgrader export` reads it."""

import csv
import subprocess
import sys

import pytest

from autograder.authoring.release import release
from autograder.course import Course
from tests.helpers import SQUARES_OK, submit
from tests.servers import POSTGRES_BIN, PostgresServer

pytestmark = pytest.mark.skipif(not POSTGRES_BIN, reason="PostgreSQL (Debian's postgresql) is not installed")


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


def test_grading_and_nbgrader_export_with_a_postgresql_gradebook(fixture_course, postgres):
    config = fixture_course.root / "nbgrader_config.py"
    config.write_text(config.read_text() + f"\nc.CourseDirectory.db_url = {postgres.url!r}\n")
    course = Course.load(fixture_course.root)
    assert course.db_url == postgres.url
    for assignment in ("ps1", "ps2"):
        release(course, assignment, execute_solutions=True)
    submit(course, "ps1", "ada")
    submit(course, "ps1", "bob", {"squares": SQUARES_OK})
    submit(course, "ps2", "ada")

    # two graders at once, each grading an assignment into the same gradebook
    command = [sys.executable, "-m", "autograder.cli", "grade", "--course", str(course.root), "--workers", "1"]
    graders = [
        subprocess.Popen([*command, assignment], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for assignment in ("ps1", "ps2")
    ]
    for grader in graders:
        output, _ = grader.communicate(timeout=300)
        assert grader.returncode == 0, output

    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--to", "export.csv"],
        cwd=course.root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader((course.root / "export.csv").open())}
    assert float(rows[("ps1", "ada")]["raw_score"]) == 9  # autograded points (the written answer waits for a person)
    assert float(rows[("ps1", "bob")]["raw_score"]) == 2
    assert float(rows[("ps2", "ada")]["raw_score"]) == 5
