"""The gradebook the grader creates is the one nbgrader creates: same tables, same alembic revision."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from autograder.course import put_python_scripts_on_path
from autograder.gradebook import alembic_head, create_new_gradebook


def _schema(db_url: str) -> tuple[dict, list]:
    engine = create_engine(db_url)
    try:
        inspector = inspect(engine)
        tables = {name: sorted(c["name"] for c in inspector.get_columns(name)) for name in inspector.get_table_names()}
        with engine.connect() as connection:
            version = [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]
        return tables, version
    finally:
        engine.dispose()


def test_new_gradebook_matches_nbgrader(tmp_path):
    from nbgrader.api import Gradebook, get_alembic_version

    put_python_scripts_on_path()
    theirs, ours = f"sqlite:///{tmp_path / 'theirs.db'}", f"sqlite:///{tmp_path / 'ours.db'}"
    Gradebook(theirs).close()  # nbgrader's own path: `alembic heads` in a subprocess
    assert create_new_gradebook(ours)
    Gradebook(ours).close()  # finds the database made, adds nothing
    assert _schema(ours) == _schema(theirs)
    assert _schema(ours)[1] == [get_alembic_version()] == [alembic_head()]


def test_existing_gradebook_is_left_alone(tmp_path):
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert create_new_gradebook(db_url)
    with Gradebook(db_url) as gradebook:
        gradebook.add_student("ada")
    assert not create_new_gradebook(db_url)
    with Gradebook(db_url) as gradebook:
        assert [s.id for s in gradebook.students] == ["ada"]


def _result(student: str, score: float, unknown_cell: bool = False):
    from autograder.results import CellResult, SubmissionResult

    cells = [CellResult("ps1.ipynb", "test_squares", 2, score, "" if score else "AssertionError")]
    if unknown_cell:  # a cell this gradebook never heard of: nbgrader's find_grade raises MissingEntry
        cells.append(CellResult("ps1.ipynb", "test_from_another_version", 1, 1))
    return SubmissionResult(student, "ps1", cells=cells)


def test_a_submission_is_written_in_one_commit_or_not_at_all(fixture_course):
    """nbgrader's update_or_create_* commit after each row (a new submission: four commits, each an fsync);
    the writer makes them one transaction: one commit per submission, and a write that fails leaves none
    of that submission behind."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy import event

    from autograder.grade import AssignmentSource
    from autograder.gradebook import GradebookWriter

    notebooks = AssignmentSource.load(fixture_course, "ps1").notebooks
    commits = []
    with GradebookWriter(fixture_course, "ps1", notebooks) as writer:
        event.listen(writer.gradebook.engine, "commit", lambda connection: commits.append(1))
        writer.write(_result("ada", 2))
        assert len(commits) == 1
        writer.write(_result("ada", 0))  # a re-grade: an update
        assert len(commits) == 2
        with pytest.raises(MissingEntry):
            writer.write(_result("bob", 2, unknown_cell=True))
        assert len(commits) == 2
        writer.write(_result("cy", 2))  # the writer goes on after a failed write
    with Gradebook(fixture_course.db_url) as gradebook:
        assert [s.id for s in gradebook.students] == ["ada", "cy"]
        assert gradebook.find_grade("test_squares", "ps1", "ps1", "ada").score == 0
        assert gradebook.find_grade("test_squares", "ps1", "ps1", "cy").score == 2
