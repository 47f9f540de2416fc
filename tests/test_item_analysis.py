"""Item analysis in the course report, against a small batch computed by hand."""

import math

import pytest

from autograder.grading.results import CellResult, SubmissionResult
from autograder.records.course_report import question_stats, render_report
from autograder.records.item_analysis import failure_kind, item_analysis

MAX = {"q1": 2, "q2": 3, "q3": 1}
# Six students, three questions. q3: everyone gets full points.
SCORES = {
    "s1": {"q1": 0, "q2": 0, "q3": 1},
    "s2": {"q1": 1, "q2": 1, "q3": 1},
    "s3": {"q1": 2, "q2": 1, "q3": 1},
    "s4": {"q1": 2, "q2": 2, "q3": 1},
    "s5": {"q1": 2, "q2": 3, "q3": 1},
    "s6": {"q1": 0, "q2": 3, "q3": 1},
}
MESSAGES = {("s1", "q1"): "not graded: the notebook's time limit of 15 s was used up",
            ("s1", "q2"): "not graded: the student process ended (killed: out of memory)",
            ("s6", "q1"): "dx: relative error 3.1e-02 > 1e-07"}  # fmt: skip


def _batch(scores=SCORES):
    return [
        SubmissionResult(student, "a", [CellResult("a.ipynb", q, MAX[q], float(points), MESSAGES.get((student, q), ""))
                                        for q, points in row.items()])
        for student, row in scores.items()
    ]  # fmt: skip


def test_statistics_discrimination_and_quintiles_equal_a_hand_computation():
    items = {item.grade_id: item for item in item_analysis(_batch())}
    q1 = items["q1"]
    # q1 = [0, 1, 2, 2, 2, 0]: mean 7/6, median 1.5, population std sqrt(29/36)
    assert q1.mean == pytest.approx(7 / 6) and q1.median == 1.5 and q1.std == pytest.approx(math.sqrt(29 / 36))
    assert q1.pass_rate == pytest.approx(3 / 6)
    # The other questions' totals (q2 + q3): [1, 2, 2, 3, 4, 4], mean 8/3. Deviations give
    # Sxy = 4/3, Sxx = 29/6, Syy = 22/3, so r = (4/3) / sqrt(29/6 * 22/3) = 4 / sqrt(319).
    assert q1.discrimination == pytest.approx(4 / math.sqrt(319))
    # Totals: s1 1, s2 3, s3 4, s6 4, s4 5, s5 6 (ties by name). Six into five groups: [s1, s2], [s3], [s6],
    # [s4], [s5]; q1's means: (0 + 1) / 2, 2, 0, 2, 2.
    assert q1.quintile_means == pytest.approx([0.5, 2, 0, 2, 2])
    # q2 = [0, 1, 1, 2, 3, 3] (mean 5/3) against q1 + q3 = [1, 2, 3, 3, 3, 1] (mean 13/6): Sxy = 24/18 = 4/3,
    # Sxx = 66/9 = 22/3, Syy = 174/36 = 29/6: the same r = 4 / sqrt(319).
    assert items["q2"].discrimination == pytest.approx(4 / math.sqrt(319))
    assert q1.failure_shares == pytest.approx({"timeout": 1 / 6, "crash": 0, "intake": 0})
    assert items["q2"].failure_shares == pytest.approx({"timeout": 0, "crash": 1 / 6, "intake": 0})


def test_questions_to_look_at_are_flagged_with_the_reason():
    items = {item.grade_id: item for item in item_analysis(_batch())}
    assert items["q3"].discrimination is None and items["q3"].flags == ["everyone gets full points"]
    assert items["q1"].flags == [] and items["q2"].flags == []
    reversed_scores = {s: {**row, "q3": 0 if row["q1"] + row["q2"] >= 4 else 1} for s, row in SCORES.items()}
    flagged = {item.grade_id: item for item in item_analysis(_batch(reversed_scores))}["q3"]
    assert flagged.discrimination < 0 and flagged.flags[0].startswith("negative discrimination")
    nobody = {s: {**row, "q2": 0} for s, row in SCORES.items()}
    assert "nobody gets full points" in {i.grade_id: i for i in item_analysis(_batch(nobody))}["q2"].flags


def test_one_submission_says_not_enough_instead_of_dividing_by_zero():
    items = item_analysis(_batch({"s1": SCORES["s1"]}))
    assert all(item.flags == ["not enough submissions"] and item.discrimination is None for item in items)
    assert all(item.quintile_means == [] for item in items)
    page = render_report("a", _batch({"s1": SCORES["s1"]}), question_stats(_batch({"s1": SCORES["s1"]})))
    assert "not enough submissions" in page and "n/a (fewer than 5)" in page


@pytest.mark.parametrize(
    "message, kind",
    [("not graded: the notebook's time limit of 15 s was used up", "timeout"),
     ("TimeoutError: the test took longer than 10 s", "timeout"),
     ("not graded: the student process ended (killed: out of memory)", "crash"),
     ("not graded: a1.ipynb is not valid JSON (line 3)", "intake"),
     ("dx: relative error 3.1e-02 > 1e-07", None)],
)  # fmt: skip
def test_a_lost_question_is_put_down_to_what_lost_it(message, kind):
    assert failure_kind(CellResult("a.ipynb", "q", 2, 0.0, message)) == kind
    assert failure_kind(CellResult("a.ipynb", "q", 2, 2.0, "")) is None


def test_the_report_page_shows_the_item_table_and_the_flags():
    page = render_report("a", _batch(), question_stats(_batch()))
    assert "Item analysis" in page and f"{4 / math.sqrt(319):.2f}" in page
    assert "<b>q3</b>: everyone gets full points" in page and "0.5 / 2.0 / 0.0 / 2.0 / 2.0" in page
