"""`course release`: what students get, what instructors post, and what happens on bad input."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.authoring.release import execute_notebook, release, solution_notebook, solutions_digest
from autograder.course import REPO_ROOT, Course, CourseError
from autograder.notebook import cells
from autograder.notebook.source import read_source_notebook

COURSE_ASSIGNMENTS = Course.load(REPO_ROOT).assignments()

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN", "END HIDDEN")

MARKER = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$", re.MULTILINE)


def _text(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.rglob("*")) if p.is_file())


def test_release_strips_solutions_hidden_tests_and_mutants(fixture_course):
    (fixture_course.source_dir / "ps1" / "mutants.toml").write_text('[[mutant]]\nreplace = "secret"\n')
    release(fixture_course, "ps1")
    student = fixture_course.release_dir / "ps1"
    assert (student / "ps1.ipynb").is_file()
    assert not (student / "mutants.toml").exists()
    for marker in MARKERS:
        assert marker not in _text(student)
    assert "squares(10)" not in _text(student), "hidden test leaked into the release"
    assert "raise NotImplementedError()" in _text(student)

    posted = nbformat.read(fixture_course.solutions_dir / "ps1" / "ps1.ipynb", as_version=4)
    for marker in MARKERS:
        assert marker not in json.dumps(posted)
    assert "squares(10)" not in json.dumps(posted), "hidden test leaked into the posted solution"
    assert any(cell.get("outputs") for cell in posted.cells if cell.cell_type == "code")


def test_release_is_deterministic(fixture_course):
    release(fixture_course, "ps1", execute_solutions=False)
    first = (fixture_course.release_dir / "ps1" / "ps1.ipynb").read_bytes()
    release(fixture_course, "ps1", execute_solutions=False)
    assert (fixture_course.release_dir / "ps1" / "ps1.ipynb").read_bytes() == first


def test_release_leaves_no_scratch_behind(fixture_course):
    release(fixture_course, "ps1", execute_solutions=False)
    assert list((fixture_course.root / ".course").iterdir()) == []


def test_unknown_assignment_is_one_clear_line(fixture_course):
    with pytest.raises(CourseError, match="unknown assignment 'nope'.*known: ps1"):
        release(fixture_course, "nope")


def _break_cell(course: Course, edit) -> Path:
    path = course.source_dir / "ps1" / "ps1.ipynb"
    nb = nbformat.read(path, as_version=4)
    edit(nb)
    nbformat.write(nb, path)
    return path


def test_invalid_metadata_names_file_and_cell_and_keeps_old_release(fixture_course):
    release(fixture_course, "ps1", execute_solutions=False)
    before = _text(fixture_course.release_dir / "ps1")

    def drop_points(nb):
        del nb.cells[3].metadata["nbgrader"]["points"]

    path = _break_cell(fixture_course, drop_points)
    with pytest.raises(CourseError) as error:
        release(fixture_course, "ps1")
    message = str(error.value)
    assert str(path) in message and "cell 3" in message and "points" in message
    assert "\n" not in message
    assert _text(fixture_course.release_dir / "ps1") == before


def test_duplicate_grade_id_names_both_cells(fixture_course):
    def duplicate(nb):
        nb.cells[5].metadata["nbgrader"]["grade_id"] = "test_squares"

    _break_cell(fixture_course, duplicate)
    with pytest.raises(CourseError, match=r"cell 5: duplicate grade_id 'test_squares' \(already used by cell 3\)"):
        release(fixture_course, "ps1")
    assert not (fixture_course.release_dir / "ps1").exists(), "a failed release must write nothing"


def test_unreadable_notebook_is_reported(fixture_course):
    (fixture_course.source_dir / "ps1" / "ps1.ipynb").write_text("{not json")
    with pytest.raises(CourseError, match="ps1.ipynb: not a readable notebook"):
        release(fixture_course, "ps1")


def test_cli_exits_nonzero_with_one_line(fixture_course):
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "release", "nope", "--course", str(fixture_course.root)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown assignment 'nope'" in done.stderr


# --- the course's own committed release/ and solutions/ -------------------------------------------------


def test_every_assignment_has_release_and_solutions(repo_course):
    assert repo_course.assignments(), "no assignment in source/"
    for assignment in repo_course.assignments():
        assert (repo_course.release_dir / assignment).is_dir(), f"run `course release {assignment}`"
        assert (repo_course.solutions_dir / assignment).is_dir(), f"run `course release {assignment}`"


def test_release_is_up_to_date_with_source(repo_course, tmp_path):
    """release/ byte for byte, solutions/ cell for cell (outputs aside), as `course release` makes them."""
    shutil.copy(repo_course.root / "nbgrader_config.py", tmp_path)
    shutil.copytree(repo_course.source_dir, tmp_path / "source")
    scratch = Course.load(tmp_path)
    for assignment in repo_course.assignments():
        release(scratch, assignment, execute_solutions=False)
        fresh, committed = scratch.release_dir / assignment, repo_course.release_dir / assignment
        fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
        committed_files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
        assert fresh_files == committed_files, f"{assignment}: release/ is stale; run `course release`"
        for name in fresh_files:
            assert (fresh / name).read_bytes() == (committed / name).read_bytes(), (
                f"release/{assignment}/{name} is stale; run `course release {assignment}`"
            )
        for source_path in repo_course.source_notebooks(assignment):
            expected = solution_notebook(read_source_notebook(source_path))
            posted = nbformat.read(repo_course.solutions_dir / assignment / source_path.name, as_version=4)
            assert [c.source for c in posted.cells] == [c.source for c in expected.cells], (
                f"solutions/{assignment}/{source_path.name} is stale; run `course release {assignment}`"
            )


def test_posted_solutions_were_executed_from_the_current_sources(repo_course):
    """A fresh clone's `make main` must leave the checkout clean: it executes a solution again only when its
    stored digest differs, so a change to source/<a>, course_utils or the config needs a `course release`."""
    for assignment in repo_course.assignments():
        digest = solutions_digest(repo_course, assignment)
        for path in (repo_course.solutions_dir / assignment).glob("*.ipynb"):
            stored = nbformat.read(path, as_version=4).metadata.get("course", {}).get("solutions_digest")
            assert stored == digest, f"{path} was executed from other sources; run `course release {assignment}`"


def test_committed_notebooks_have_valid_metadata_and_no_markers(repo_course):
    for assignment in repo_course.assignments():
        for path in (repo_course.release_dir / assignment).glob("*.ipynb"):
            nb = nbformat.read(path, as_version=4)
            MetadataValidator().validate_nb(nb)
            assert not any(MARKER.search(cell.source) for cell in nb.cells), path
        for path in (repo_course.solutions_dir / assignment).glob("*.ipynb"):
            nb = nbformat.read(path, as_version=4)
            assert not any(MARKER.search(cell.source) for cell in nb.cells), path
            assert any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), (
                f"{path} has no outputs: solutions are posted executed"
            )


@pytest.mark.parametrize("assignment", COURSE_ASSIGNMENTS)
def test_solution_runs_clean_on_cpu_within_60_s(repo_course, assignment, tmp_path):
    for source_path in repo_course.source_notebooks(assignment):
        nb = solution_notebook(read_source_notebook(source_path))
        shutil.copytree(repo_course.source_dir / assignment, tmp_path / assignment)
        started = time.perf_counter()
        execute_notebook(nb, workdir=tmp_path / assignment, timeout=60)
        assert time.perf_counter() - started < 60


def test_cell_roles_agree_with_nbgrader(repo_course, fixture_course):
    """cells.py reads nbgrader's metadata itself (no nbgrader import when grading): same verdicts as nbgrader."""
    from nbgrader import utils as nbgrader_utils


    paths = list(repo_course.source_dir.glob("*/*.ipynb")) + list(fixture_course.source_dir.glob("*/*.ipynb"))
    seen = set()
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            assert cells.is_graded(cell) == bool(nbgrader_utils.is_grade(cell))
            assert (cells.role(cell) == "solution") == bool(nbgrader_utils.is_solution(cell))
            assert (cells.role(cell) in ("test", "readonly")) == bool(nbgrader_utils.is_locked(cell)), cell.source[:80]
            seen.add(cells.role(cell))
    assert seen == {"solution", "test", "readonly", "free"}
