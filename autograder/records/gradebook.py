"""Write grades into nbgrader's gradebook (its schema; the assignment through its API, each submission's
rows with SQLAlchemy Core on its tables, see GradebookWriter), so formgrader, `nbgrader export` and
`nbgrader generate_feedback` see them. The grading coordinator is the only writer.

A GPU test waiting for a CUDA runner has no score yet (auto_score NULL, never 0) and is flagged
needs_manual_grade, so formgrader lists it among the grades still to come; nbgrader keeps comments
for solution cells only, so the note "waiting for GPU runner: <test>" goes on the notebook's
GPU-tagged solution cells, and the autograded notebook formgrader shows carries it in the test's output.

On a database server (PostgreSQL: db_url = "postgresql+psycopg2://..."), several graders may write at
once: "find, else insert" (a student, a submission, the schema of an empty database) would race, so each
writer holds a PostgreSQL advisory lock while it creates or writes.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass

from nbformat import NotebookNode

from autograder.course import Course, put_python_scripts_on_path
from autograder.grading.results import WAITING_FOR_GPU, SubmissionResult
from autograder.notebook import cells

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
    heads` command in a subprocess (a new Python importing alembic and nbgrader) before the first grade
    can be written. Here the revision comes from alembic's API in this process. The result is what
    nbgrader itself makes: the same tables and the same alembic_version row, so `nbgrader db upgrade` and
    formgrader see a normal gradebook (tests/test_gradebook.py compares them)."""
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


@dataclass
class AssignmentLayout:
    """The gradebook ids of one assignment's rows, read once per batch: what a submission's rows point to."""

    assignment_id: str
    notebooks: dict[str, str]  # notebook name -> notebook.id
    graded: dict[tuple[str, str], str]  # (notebook, grade id) -> cell id: cells with a Grade row per submission
    solutions: dict[tuple[str, str], str]  # (notebook, grade id) -> cell id: solution cells (a Comment row each)
    tasks: dict[tuple[str, str], str]  # task cells: a Grade and a Comment row each

    @classmethod
    def read(cls, gradebook, assignment: str) -> AssignmentLayout:
        found = gradebook.find_assignment(assignment)
        layout = cls(found.id, {}, {}, {}, {})
        for notebook in found.notebooks:
            layout.notebooks[notebook.name] = notebook.id
            layout.graded.update({(notebook.name, cell.name): cell.id for cell in notebook.grade_cells})
            layout.solutions.update({(notebook.name, cell.name): cell.id for cell in notebook.solution_cells})
            layout.tasks.update({(notebook.name, cell.name): cell.id for cell in notebook.task_cells})
        layout.graded.update(layout.tasks)
        return layout


class GradebookWriter:
    """One open gradebook for a whole batch.

    The assignment, its notebooks and cells are recorded with nbgrader's API. Each submission is then
    written with SQLAlchemy Core statements on nbgrader's own tables: the rows its add_submission makes
    for a new submission (a SubmittedAssignment, a SubmittedNotebook per notebook, a Grade per grade or
    task cell, a Comment per solution or task cell), then the scores and comments, in one transaction.
    nbgrader's ORM path (update_or_create_*, find_grade, find_comment) costs the coordinator many queries
    per submission, on the core the grading workers need (tests/test_gradebook.py checks that both paths
    leave the same rows)."""

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
        self.lock = ServerLock(course.db_url)
        with self.lock.held():
            create_new_gradebook(course.db_url)
            self.gradebook = Gradebook(course.db_url, course.course_id)
            with self._quiet():
                self._record_assignment(notebooks)
            self.layout = AssignmentLayout.read(self.gradebook, assignment)
            self.gradebook.db.commit()

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

    def _submission(self, connection, student: str) -> str:
        """The id of the student's submission row, made (with the student's row if new) as nbgrader's
        add_submission makes it: mirroring every notebook and cell of the assignment."""
        from nbgrader.api import Comment, Grade, Student, SubmittedAssignment, SubmittedNotebook, new_uuid
        from sqlalchemy import insert, select

        students, submitted = Student.__table__, SubmittedAssignment.__table__
        if connection.execute(select(students.c.id).where(students.c.id == student)).first() is None:
            connection.execute(insert(students).values(id=student))
        layout = self.layout
        found = connection.execute(
            select(submitted.c.id).where(submitted.c.assignment_id == layout.assignment_id,
                                         submitted.c.student_id == student)
        ).first()  # fmt: skip
        if found is not None:
            return found.id
        submission = new_uuid()
        connection.execute(insert(submitted).values(id=submission, assignment_id=layout.assignment_id,
                                                    student_id=student))  # fmt: skip
        submitted_notebooks = {name: new_uuid() for name in layout.notebooks}
        connection.execute(
            insert(SubmittedNotebook.__table__),
            [{"id": submitted_notebooks[name], "assignment_id": submission, "notebook_id": notebook_id}
             for name, notebook_id in layout.notebooks.items()],
        )  # fmt: skip
        grades = [{"id": new_uuid(), "cell_id": cell, "notebook_id": submitted_notebooks[name]}
                  for (name, _), cell in layout.graded.items()]  # fmt: skip
        comments = [{"id": new_uuid(), "cell_id": cell, "notebook_id": submitted_notebooks[name]}
                    for (name, _), cell in (layout.solutions | layout.tasks).items()]  # fmt: skip
        if grades:
            connection.execute(insert(Grade.__table__), grades)
        if comments:
            connection.execute(insert(Comment.__table__), comments)
        return submission

    def _submitted_notebooks(self, connection, submission: str) -> list[str]:
        """The ids of the submission's SubmittedNotebook rows. Every lookup here names the columns of one of
        nbgrader's unique indexes, (notebook_id, assignment_id) here and (cell_id, notebook_id) for grades
        and comments: a lookup by assignment_id or notebook_id alone scans the whole table, so each write
        would get slower as the gradebook fills."""
        from nbgrader.api import SubmittedNotebook
        from sqlalchemy import select

        table = SubmittedNotebook.__table__
        query = select(table.c.id).where(table.c.notebook_id.in_(list(self.layout.notebooks.values())),
                                         table.c.assignment_id == submission)  # fmt: skip
        return [row.id for row in connection.execute(query)]

    def _scores(self, connection, notebooks: list[str], result: SubmissionResult) -> list[dict]:
        """The new auto_score and needs_manual_grade of each Grade row the result has a cell for."""
        from nbgrader.api import Grade, MissingEntry
        from sqlalchemy import select

        grade = Grade.__table__
        rows = connection.execute(
            select(grade.c.id, grade.c.cell_id, grade.c.manual_score)
            .where(grade.c.cell_id.in_(list(self.layout.graded.values())), grade.c.notebook_id.in_(notebooks))
        )
        by_cell = {row.cell_id: row for row in rows}
        updates = []
        for cell in result.cells:
            key = (cell.notebook.removesuffix(".ipynb"), cell.grade_id)
            row = by_cell.get(self.layout.graded.get(key))
            if row is None:  # as nbgrader's find_grade says it
                raise MissingEntry(f"No such grade: {cell.grade_id} in {key[0]} of {result.assignment} "
                                   f"by {result.student}")  # fmt: skip
            manual = cell.manual or cell.pending or row.manual_score is not None
            updates.append({"row": row.id, "auto_score": cell.score, "needs_manual_grade": manual})
        return updates

    def _comments(self, connection, notebooks: list[str], result: SubmissionResult) -> list[dict]:
        """The new auto_comment of each solution cell's Comment row: the test's message for a scored cell,
        "waiting for GPU runner: <tests>" on GPU-tagged solution cells while GPU tests are pending."""
        from nbgrader.api import Comment
        from sqlalchemy import select

        comment = Comment.__table__
        rows = connection.execute(
            select(comment.c.id, comment.c.cell_id)
            .where(comment.c.cell_id.in_(list(self.layout.solutions.values())), comment.c.notebook_id.in_(notebooks))
        )
        row_of_cell = {row.cell_id: row.id for row in rows}
        text = {}  # comment row -> auto_comment
        for cell in result.cells:
            row = row_of_cell.get(self.layout.solutions.get((cell.notebook.removesuffix(".ipynb"), cell.grade_id)))
            if row is not None:
                scored = cell.message and not cell.manual and not cell.pending
                text[row] = cell.public_message if scored else None
        for notebook_id, solution_ids in self.gpu_solutions.items():
            waiting = [c.grade_id for c in result.cells
                       if c.pending and c.notebook.removesuffix(".ipynb") == notebook_id]  # fmt: skip
            for grade_id in solution_ids:
                row = row_of_cell.get(self.layout.solutions.get((notebook_id, grade_id)))
                if row is not None:
                    text[row] = f"{WAITING_FOR_GPU}: {', '.join(waiting)}" if waiting else None
        return [{"row": row, "auto_comment": comment_text} for row, comment_text in text.items()]

    def write(self, result: SubmissionResult) -> None:
        """One submission's grades and comments, committed together or not at all. Raises nbgrader's
        MissingEntry for a cell the gradebook does not know (nothing of that submission is written)."""
        from nbgrader.api import Comment, Grade
        from sqlalchemy import bindparam, update

        grade, comment = Grade.__table__, Comment.__table__
        session = self.gradebook.db
        with self.lock.held():
            try:
                connection = session.connection()
                notebooks = self._submitted_notebooks(connection, self._submission(connection, result.student))
                scores = self._scores(connection, notebooks, result)
                comments = self._comments(connection, notebooks, result)
                if scores:
                    connection.execute(
                        update(grade).where(grade.c.id == bindparam("row")).values(
                            auto_score=bindparam("auto_score"), needs_manual_grade=bindparam("needs_manual_grade")),
                        scores,
                    )  # fmt: skip
                if comments:
                    connection.execute(
                        update(comment).where(comment.c.id == bindparam("row"))
                        .values(auto_comment=bindparam("auto_comment")),
                        comments,
                    )  # fmt: skip
            except BaseException:
                session.rollback()
                raise
            session.commit()

    def close(self) -> None:
        self.gradebook.close()
        self.lock.close()

    def __enter__(self) -> GradebookWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

