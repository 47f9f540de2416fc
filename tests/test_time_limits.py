"""Time limits derived from the solution's measured run time (autograder/grading/time_limits.py)."""

import shutil
import time

import nbformat
import pytest

from autograder.authoring.release import release
from autograder.course import REPO_ROOT, Course
from autograder.grading import time_limits
from autograder.grading.grade import AssignmentSource, Timeouts, grade_submission
from autograder.notebook import cells
from tests.helpers import submit

CONFIG = {"ExecutePreprocessor": {"timeout": 120}}


def test_limits_are_the_floor_or_a_multiple_of_the_solution_below_the_ceiling():
    fast = time_limits.derive(CONFIG, "a", time_limits.Timing(0.4, 2.0))
    assert (fast.cell_s, fast.notebook_s) == (10, 15)  # the floors
    slow = time_limits.derive(CONFIG, "a", time_limits.Timing(3.2, 11.5))
    assert (slow.cell_s, slow.notebook_s) == (32, 57.5)  # 10x the slowest cell, 5x the total
    huge = time_limits.derive(CONFIG, "a", time_limits.Timing(60, 500))
    assert (huge.cell_s, huge.notebook_s) == (120, 900)  # the ceilings
    assert time_limits.derive(CONFIG, "a", None).basis == "not measured: ceilings"
    gpu = time_limits.derive(CONFIG, "a", time_limits.Timing(0.4, 2.0), gpu=True)
    assert (gpu.cell_s, gpu.notebook_s) == (600, 1800)


def test_config_and_per_assignment_overrides():
    limits = {"notebook_factor": 3, "notebook_floor_s": 20, "per_assignment": {"b": {"cell_s": 99}}}
    config = {**CONFIG, "TimeLimits": limits}
    assert time_limits.derive(config, "a", time_limits.Timing(3, 10)).notebook_s == 30
    assert time_limits.derive(config, "a", time_limits.Timing(3, 5)).notebook_s == 20
    overridden = time_limits.derive(config, "b", time_limits.Timing(3, 10))
    assert (overridden.cell_s, overridden.notebook_s) == (99, 30) and "overridden" in overridden.basis


def test_measured_times_are_rounded_up_and_the_timestamps_removed():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")])
    stamps = [
        ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.230Z"),
        ("2026-01-01T00:00:02Z", "2026-01-01T00:00:02.01Z"),
    ]
    for cell, (start, end) in zip(nb.cells, stamps, strict=True):
        cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    assert time_limits.measure(nb) == time_limits.Timing(1.3, 1.3)
    assert all("execution" not in cell.metadata for cell in nb.cells)


def test_release_records_the_timing_and_the_limits_follow_it(fixture_course):
    release(fixture_course, "ps1")
    solution = nbformat.read(fixture_course.solutions_dir / "ps1" / "ps1.ipynb", as_version=4)
    timing = time_limits.stored_timing(solution)
    assert timing is not None and 0 < timing.slowest_cell_s <= timing.total_s
    assert not any("execution" in cell.metadata for cell in solution.cells)
    timeouts = Timeouts.for_assignment(fixture_course, AssignmentSource.load(fixture_course, "ps1"))
    assert timeouts.cell_s == 8  # the fixture course's ExecutePreprocessor.timeout is the ceiling
    assert timeouts.notebook_s == 15 and timeouts.basis.startswith("the solution's")


def test_an_unchanged_course_is_released_byte_for_byte_without_executing_again(fixture_course):
    release(fixture_course, "ps1")
    posted = (fixture_course.solutions_dir / "ps1" / "ps1.ipynb").read_bytes()
    report = release(fixture_course, "ps1")
    assert report.solutions_up_to_date == ["ps1.ipynb"]
    assert (fixture_course.solutions_dir / "ps1" / "ps1.ipynb").read_bytes() == posted
    source = fixture_course.source_dir / "ps1" / "ps1.ipynb"
    nb = nbformat.read(source, as_version=4)
    nb.cells[0].source += "\nChanged."
    nbformat.write(nb, source)
    assert release(fixture_course, "ps1").solutions_up_to_date == []


SLOW = "import time\nwhile True:\n    sum(range(10_000))\n"  # interruptible: each cell uses its whole limit


@pytest.fixture
def a1_course(repo_course, tmp_path) -> Course:
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(repo_course.root / "nbgrader_config.py", root)
    for folder in ("source", "release", "solutions"):
        shutil.copytree(getattr(repo_course, f"{folder}_dir") / "a1_backprop", root / folder / "a1_backprop")
    return Course.load(root)


def test_a_submission_slow_in_every_cell_is_stopped_at_the_derived_notebook_limit(a1_course):
    source = AssignmentSource.load(a1_course, "a1_backprop")
    timeouts = Timeouts.for_assignment(a1_course, source)
    assert timeouts.notebook_s <= 30, timeouts  # far below the old fixed 900 s
    folder = submit(a1_course, "a1_backprop", "slowpoke")
    path = folder / "a1_backprop.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cells.role(cell) == "solution":
            cell.source = SLOW + cell.source
    nbformat.write(nb, path)
    started = time.monotonic()
    result = grade_submission(source, folder, "slowpoke", timeouts)
    took = time.monotonic() - started
    assert result.score == 0
    assert any(f"time limit of {timeouts.notebook_s:g} s was used up" in c.message for c in result.cells), [
        c.message for c in result.cells
    ]
    assert took < timeouts.notebook_s + 30, took  # the limit, plus start-up and the kill


def test_the_readme_lists_the_limits_the_committed_solutions_give(repo_course):
    """The README's table is what grading uses: the limits derived from each posted solution's timing."""
    readme = (REPO_ROOT / "README.md").read_text()
    for assignment in repo_course.assignments():
        source = AssignmentSource.load(repo_course, assignment)
        timing = time_limits.stored_timing(
            nbformat.read(repo_course.solutions_dir / assignment / f"{assignment}.ipynb", as_version=4)
        )
        limits = Timeouts.for_assignment(repo_course, source)
        row = (f"| {assignment} | {timing.slowest_cell_s:g} s | {timing.total_s:g} s | {limits.cell_s:g} s | "
               f"{limits.notebook_s:g} s |")  # fmt: skip
        assert row in readme, f"README.md: the time-limit row of {assignment} should read {row}"
