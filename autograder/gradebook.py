"""Write grades into nbgrader's gradebook (its own API and schema), so formgrader, `nbgrader export` and
`nbgrader generate_feedback` see them. The grading coordinator is the only writer.

A GPU test waiting for a CUDA runner has no score yet (auto_score NULL, never 0) and is flagged
needs_manual_grade, so formgrader lists it among the grades still to come; nbgrader keeps comments
for solution cells only, so the note "waiting for GPU runner: <test>" goes on the notebook's
GPU-tagged solution cells, and the autograded notebook formgrader shows carries it in the test's output.

On a database server (PostgreSQL: db_url = "postgresql+psycopg2://..."), several graders may write at
once: nbgrader's "find, else insert" (a student, a submission, the schema of an empty database) would race,
so each writer holds a PostgreSQL advisory lock while it creates or writes.
"""

from __future__ import annotations

import contextlib
import json
import warnings

from nbformat import NotebookNode

from autograder import cells
from autograder.course import Course, put_python_scripts_on_path
from autograder.results import WAITING_FOR_GPU, SubmissionResult

ADVISORY_LOCK = 0x6E62_6772  # "nbgr": the key every writer of one PostgreSQL gradebook locks


class ServerLock:
    """A PostgreSQL session advisory lock on its own connection; nothing to lock for SQLite (one file)."""

    def __init__(self, db_url: str):
        self.connection = None
        if db_url.startswith("postgresql"):
            from sqlalchemy import create_engine

            self.engine = create_engine(db_url)
            self.connection = self.engine.connect()

    @contextlib.contextmanager
    def held(self):
        if self.connection is None:
            yield
            return
        from sqlalchemy import text

        self.connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK})
        try:
            yield
        finally:
            self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK})
            self.connection.commit()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.engine.dispose()


def alembic_head() -> str:
    """The schema revision of the installed nbgrader, read with alembic's API from nbgrader's migrations."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


def create_new_gradebook(db_url: str) -> bool:
    """Create nbgrader's tables and alembic stamp in an empty database; False if it has tables already.

    nbgrader's Gradebook does the same for a new database, but learns the revision by running the `alembic
    heads` command in a subprocess: about 2.3 s of CPU (a new Python importing alembic and nbgrader) before
    the first grade can be written. Here the revision comes from alembic's API in this process (0.07 s).
    The result is what nbgrader itself makes: the same tables and the same alembic_version row, so
    `nbgrader db upgrade` and formgrader see a normal gradebook (tests/test_gradebook.py compares them)."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url)
    try:
        if inspect(engine).get_table_names():
            return False
        with engine.begin() as connection:
            Base.metadata.create_all(bind=connection)
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            stamp = text("INSERT INTO alembic_version (version_num) VALUES (:head)")
            connection.execute(stamp, {"head": alembic_head()})
        return True
    finally:
        engine.dispose()


class GradebookWriter:
    """One open gradebook for a whole batch."""

    def __init__(self, course: Course, assignment: str, notebooks: dict[str, NotebookNode]):
        from nbgrader.api import Gradebook

        put_python_scripts_on_path()
        self.assignment = assignment
        self.gpu_solutions = {  # notebook id -> grade ids of its GPU-tagged solution cells
            name.removesuffix(".ipynb"): [
                cells.grade_id(c) for c in nb.cells if cells.role(c) == "solution" and cells.is_gpu(c)
            ]
            for name, nb in notebooks.items()
        }
        self.solution_cells = {  # (notebook id, grade id): nbgrader keeps comments for these cells only
            (name.removesuffix(".ipynb"), cells.grade_id(c))
            for name, nb in notebooks.items()
            for c in nb.cells
            if cells.role(c) == "solution"
        }
        self.lock = ServerLock(course.db_url)
        with self.lock.held():
            create_new_gradebook(course.db_url)
            self.gradebook = Gradebook(course.db_url, course.course_id)
            with self._quiet():
                self._record_assignment(notebooks)

    @staticmethod
    @contextlib.contextmanager
    def _quiet():
        from sqlalchemy.exc import SAWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=SAWarning)  # raised inside nbgrader's own update_or_create_*
            yield

    def _record_assignment(self, notebooks: dict[str, NotebookNode]) -> None:
        gradebook, assignment = self.gradebook, self.assignment
        gradebook.update_or_create_assignment(assignment)
        existing = {nb.name for nb in gradebook.find_assignment(assignment).notebooks}
        for name, notebook in notebooks.items():
            notebook_id = name.removesuffix(".ipynb")
            if notebook_id not in existing:
                kernelspec = json.dumps(notebook.metadata.get("kernelspec", {}))
                gradebook.add_notebook(notebook_id, assignment, kernelspec=kernelspec)
            for cell in notebook.cells:
                gid, role = cells.grade_id(cell), cells.role(cell)
                if gid is None or role == "free":
                    continue
                if cells.is_graded(cell):
                    gradebook.update_or_create_grade_cell(
                        gid, notebook_id, assignment, max_score=cells.points(cell), cell_type=cell.cell_type
                    )
                if role == "solution":
                    gradebook.update_or_create_solution_cell(gid, notebook_id, assignment)
                gradebook.update_or_create_source_cell(
                    gid, notebook_id, assignment, cell_type=cell.cell_type,
                    locked=role in ("readonly", "test"), source=cell.source,
                )  # fmt: skip

    def students(self) -> set[str]:
        """The students who have a submission of this assignment in the gradebook."""
        return {submission.student_id for submission in self.gradebook.assignment_submissions(self.assignment)}

    def _grades(self, assignment: str, student: str) -> dict:
        """Every grade row of one submission, by (notebook id, grade id): one query instead of one per cell."""
        from nbgrader.api import Assignment, Grade, GradeCell, Notebook, Student, SubmittedAssignment, SubmittedNotebook

        rows = (
            self.gradebook.db.query(Grade, Notebook.name, GradeCell.name)
            .join(GradeCell, GradeCell.id == Grade.cell_id)
            .join(SubmittedNotebook, SubmittedNotebook.id == Grade.notebook_id)
            .join(Notebook, Notebook.id == SubmittedNotebook.notebook_id)
            .join(SubmittedAssignment, SubmittedAssignment.id == SubmittedNotebook.assignment_id)
            .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
            .join(Student, Student.id == SubmittedAssignment.student_id)
            .filter(Assignment.name == assignment, Student.id == student)
        )
        return {(notebook, cell): grade for grade, notebook, cell in rows}

    @contextlib.contextmanager
    def _one_transaction(self):
        """nbgrader's update_or_create_* commit after each row they touch (a new submission: four commits,
        each an fsync of the gradebook). Inside this block they only flush; the submission is committed
        once at the end, or not at all: a submission is never left half-written."""
        session = self.gradebook.db
        session.commit = session.flush  # an instance attribute, over scoped_session.commit
        try:
            yield
        except BaseException:
            del session.commit
            session.rollback()
            raise
        del session.commit
        session.commit()

    def write(self, result: SubmissionResult) -> None:
        from nbgrader.api import MissingEntry

        gradebook = self.gradebook
        with self.lock.held(), self._quiet(), self._one_transaction():
            gradebook.update_or_create_student(result.student)
            gradebook.update_or_create_submission(result.assignment, result.student)
            grades = self._grades(result.assignment, result.student)
            for cell in result.cells:
                notebook_id = cell.notebook.removesuffix(".ipynb")
                grade = grades.get((notebook_id, cell.grade_id)) or gradebook.find_grade(
                    cell.grade_id, notebook_id, result.assignment, result.student
                )  # (find_grade raises nbgrader's own MissingEntry for a cell the gradebook does not know)
                grade.auto_score = cell.score
                grade.needs_manual_grade = cell.manual or cell.pending or grade.manual_score is not None
                if (notebook_id, cell.grade_id) not in self.solution_cells:
                    continue  # a test cell: no comment row (looking for one costs a query and an exception)
                try:
                    comment = gradebook.find_comment(cell.grade_id, notebook_id, result.assignment, result.student)
                    scored = cell.message and not cell.manual and not cell.pending
                    comment.auto_comment = cell.public_message if scored else None
                except MissingEntry:
                    pass
            for notebook_id, solution_ids in self.gpu_solutions.items():
                waiting = [
                    c.grade_id for c in result.cells if c.pending and c.notebook.removesuffix(".ipynb") == notebook_id
                ]
                for grade_id in solution_ids:
                    try:
                        comment = gradebook.find_comment(grade_id, notebook_id, result.assignment, result.student)
                    except MissingEntry:
                        continue
                    comment.auto_comment = f"{WAITING_FOR_GPU}: {', '.join(waiting)}" if waiting else None

    def close(self) -> None:
        self.gradebook.close()
        self.lock.close()

    def __enter__(self) -> GradebookWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_grades(course: Course, notebooks: dict[str, NotebookNode], results: list[SubmissionResult]) -> None:
    for assignment in sorted({result.assignment for result in results}):
        with GradebookWriter(course, assignment, notebooks) as writer:
            for result in results:
                if result.assignment == assignment:
                    writer.write(result)
