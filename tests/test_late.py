"""Late penalties and extensions, applied when grades are exported and recomputed when a date changes."""

import csv
from datetime import timedelta

import pytest

from autograder.course import Course, CourseError
from autograder.grading.results import CellResult, SubmissionResult
from autograder.records.course_report import write_course_report, write_lms_csv
from autograder.records.feedback import render_feedback
from autograder.records.late import LatePolicy, lateness

PER_DAY = LatePolicy("per_day", rate=0.1, floor=0.5, grace=timedelta(minutes=15))


@pytest.mark.parametrize(
    "late_by, kept",
    [(timedelta(minutes=10), 1.0), (timedelta(minutes=16), 0.9), (timedelta(days=1, minutes=15), 0.9),
     (timedelta(days=1, minutes=16), 0.8), (timedelta(days=10), 0.5)],
)  # fmt: skip
def test_per_day_decay_counts_started_days_after_the_grace_down_to_the_floor(late_by, kept):
    assert PER_DAY.multiplier(late_by) == pytest.approx(kept)


def test_zero_and_none_and_per_hour():
    assert LatePolicy("zero").multiplier(timedelta(seconds=1)) == 0.0
    assert LatePolicy("none").multiplier(timedelta(days=30)) == 1.0
    assert LatePolicy("per_hour", rate=0.05, floor=0.0).multiplier(timedelta(hours=2, minutes=1)) == pytest.approx(0.85)


CONFIG = """c = get_config()
c.CourseDirectory.course_id = "t"
c.Deadlines.due = {{"ps1": "{due}"}}
c.LatePolicy.kind = "per_day"
c.LatePolicy.rate = 0.1
c.LatePolicy.floor = 0.5
c.LatePolicy.grace_minutes = 15
"""
SUBMITTED = {"ada": "2026-12-10 23:50:00 UTC", "bob": "2026-12-12 08:00:00 UTC", "cy": None}


def _course(tmp_path, due="2026-12-11 00:00:00 UTC"):
    (tmp_path / "nbgrader_config.py").write_text(CONFIG.format(due=due))
    for student, stamp in SUBMITTED.items():
        folder = tmp_path / "submitted" / student / "ps1"
        folder.mkdir(parents=True, exist_ok=True)
        if stamp:
            (folder / "timestamp.txt").write_text(stamp)
    return Course.load(tmp_path)


def _results():
    return [SubmissionResult(s, "ps1", [CellResult("ps1.ipynb", "q", 10, 8.0)]) for s in SUBMITTED]


def _lms(course):
    path, problems = write_lms_csv(course, "ps1", _results())
    rows = {r["student_id"]: (r["score"], r["raw_score"], r["late_penalty"]) for r in csv.DictReader(path.open())}
    return rows, problems


def test_the_exported_scores_follow_the_policy_and_keep_the_raw_score(tmp_path):
    rows, problems = _lms(_course(tmp_path))
    # bob: 32 h late, past the 15-minute grace: 2 started days, 20% off 8 points.
    assert rows == {"ada": ("8", "8", "0"), "bob": ("6.4", "8", "1.6"), "cy": ("8", "8", "0")}
    assert problems == ["cy: no timestamp.txt: late penalty not applied"]


def test_an_extension_and_a_changed_due_date_are_recomputed_without_regrading(tmp_path):
    course = _course(tmp_path)
    (tmp_path / "extensions.csv").write_text("student,assignment,due\nbob,ps1,2026-12-12 12:00:00 UTC\n")
    rows, _ = _lms(course)
    assert rows["bob"] == ("8", "8", "0"), "bob's extension covers his submission"
    (tmp_path / "extensions.csv").unlink()
    rows, _ = _lms(_course(tmp_path, due="2026-12-11 12:00:00 UTC"))
    assert rows["bob"] == ("7.2", "8", "0.8"), "the due date moved: 20 h late is one started day, 10% off"
    rows, _ = _lms(_course(tmp_path, due="2026-12-12 07:50:00 UTC"))
    assert rows["bob"] == ("8", "8", "0"), "10 minutes late is inside the 15-minute grace"


def test_an_extension_for_an_unknown_student_or_a_bad_date_is_a_problem(tmp_path):
    course = _course(tmp_path)
    (tmp_path / "extensions.csv").write_text(
        "student,assignment,due\nzed,ps1,2026-12-20 00:00 UTC\nada,ps1,next friday\nbob,other,2026-12-30 00:00 UTC\n"
    )
    _, problems = lateness(course, "ps1", list(SUBMITTED))
    assert "extensions.csv, line 2: extension for 'zed', who has no submission" in problems
    assert "extensions.csv, line 3: 'next friday' is not a date; extension ignored" in problems


def test_a_bad_policy_is_one_line(tmp_path):
    course = _course(tmp_path)
    (tmp_path / "nbgrader_config.py").write_text(CONFIG.format(due="2026-12-11") + 'c.LatePolicy.kind = "weekly"\n')
    with pytest.raises(CourseError, match="c.LatePolicy.kind must be one of none, zero, per_day, per_hour"):
        _lms(Course.load(course.root))


def test_feedback_and_report_show_the_penalty(tmp_path):
    course = _course(tmp_path)
    late, _ = lateness(course, "ps1", list(SUBMITTED))
    page = render_feedback(_results()[1], False, late["bob"], "10% off per started day late")
    assert "Late: submitted 32.0 h after the due date (2026-12-11 00:00 UTC)" in page
    assert "Penalty: 1.6 points (10% off per started day late), so 6.4 counts" in page
    assert "Late" not in render_feedback(_results()[0], False, late["ada"], "")
    assert "no timestamp.txt: late penalty not applied" in render_feedback(_results()[2], False, late["cy"], "")
    report = write_course_report(course, "ps1", _results()).read_text()
    assert "<td>bob</td><td>submitted 32.0 h after the due date" in report and "cy: no timestamp.txt" in report
