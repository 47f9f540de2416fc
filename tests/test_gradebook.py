"""The gradebook the grader creates is the one nbgrader creates: same tables, same alembic revision."""

from __future__ import annotations

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
