"""Feedback and reports: per-student HTML (hidden details only after publication), the course report, lms.csv."""

import csv
import shutil

import pytest
from click.testing import CliRunner

from autograder.authoring.release import release
from autograder.batch.coordinator import grade_batch
from autograder.batch.jobs import JobTable, table_path
from autograder.cli import cli
from autograder.course import Course
from autograder.grading.results import CellResult, SubmissionResult
from autograder.records.course_report import normalise_message, question_stats, render_report, write_course_report
from autograder.records.feedback import render_feedback, write_feedback
from tests.conftest import FIXTURE_COURSE
from tests.helpers import MEAN_OK, NORMALISE_OK, submit

SCRIPT = "<script>alert(1)</script>"
HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The fixture course graded once: a correct, a wrong and a hidden-test-failing submission."""
    root = tmp_path_factory.mktemp("feedback") / "course"
    shutil.copytree(FIXTURE_COURSE, root)
    course = Course.load(root)
    release(course, "ps1", execute_solutions=True)
    submit(course, "ps1", "ada")
    wrong_squares = f"def squares(n):\n    raise ValueError({SCRIPT!r})"
    submit(course, "ps1", "bob", {"squares": wrong_squares, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    hidden_squares = "def squares(n):\n    return [1, 4, 9][:n]"
    submit(course, "ps1", "cy", {"squares": hidden_squares, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    grade_batch(course, "ps1", workers=1, force=True, show_progress=False)
    table = JobTable(table_path(course))
    results = {result.student: result for result in table.results("ps1")}
    table.close()
    return course, results


def _rows(html: str) -> list[str]:
    return html.split("<tr>")[2:]


def test_feedback_shows_passed_and_failed_tests_with_the_public_message(graded):
    course, results = graded
    path = write_feedback(course, results["bob"], published=False)
    assert path == course.root / "feedback" / "bob" / "ps1" / "feedback.html"
    html = path.read_text()
    squares_row = next(row for row in _rows(html) if row.startswith("<td>test_squares"))
    mean_row = next(row for row in _rows(html) if row.startswith("<td>test_mean_partial"))
    assert ">failed<" in squares_row and "0 / 2" in squares_row and "your code raised ValueError" in squares_row
    assert ">passed<" in mean_row and "4 / 4" in mean_row
    assert "Autograded score: <b>7 / 9</b>" in html
    assert "to be graded by a person" in html and "Manually graded points pending: 1" in html
    assert "<script" not in html.lower() and "http" not in html


def test_student_text_is_escaped(graded):
    course, results = graded
    html = write_feedback(course, results["bob"], published=True).read_text()
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_hostile_text_in_any_field_stays_text():
    """Names, notebook, outputs, problems and findings too, not only messages: the templates escape every value."""
    cells = [
        CellResult(f"{SCRIPT}.ipynb", f"test_{SCRIPT}", 2, 0, f"failed: {SCRIPT}", output=f"printed {SCRIPT}"),
        CellResult("nb.ipynb", "test_ok", 1, 1, "", output=f'"quoted" & {SCRIPT}'),
    ]
    problems, findings = [f"{SCRIPT}.ipynb: {SCRIPT}", SCRIPT], [f"nb.ipynb: {SCRIPT}", SCRIPT]
    result = SubmissionResult(f"ada{SCRIPT}", f"a1{SCRIPT}", cells=cells, problems=problems, findings=findings)
    pages = [render_feedback(result, published) for published in (False, True)]
    pages.append(render_report(f"a1{SCRIPT}", [result], question_stats([result])))
    for page in pages:
        assert "<script" not in page.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;quoted&#34; &amp; &lt;script&gt;" in pages[1]


def test_hidden_failure_details_only_after_publication(graded):
    course, results = graded
    assert any(cell.hidden_failed for cell in results["cy"].cells)
    before = write_feedback(course, results["cy"], published=False).read_text()
    assert HIDDEN_MARKER not in before
    assert "hidden tests failed (details are published with the grades)" in before
    after = write_feedback(course, results["cy"], published=True).read_text()
    assert HIDDEN_MARKER in after


def test_a_test_waiting_for_the_gpu_runner_says_so():
    cell = CellResult("nb.ipynb", "test_gpu", 3, None, "", gpu=True)
    cell.pending = True
    html = render_feedback(SubmissionResult("ada", "a1", cells=[cell]), published=False)
    assert "waiting for GPU runner" in html and "to be graded by a person" not in html


def test_numbers_are_collapsed_in_failure_messages():
    first = normalise_message("dx: relative error 3.1e-02 > 1e-07, worst at [2, 3]\nmore")
    assert first == normalise_message("dx: relative error 4.0e-02 > 1e-07, worst at [0, 1]")
    assert first == "dx: relative error # > #, worst at [#, #]"
    assert normalise_message("HIDDEN-MARKER-7f3a float64 squares(10)") == "HIDDEN-MARKER-7f3a float64 squares(#)"


def test_course_report_has_histograms_pass_rates_and_common_failures(graded):
    course, results = graded
    path = write_course_report(course, "ps1", list(results.values()))
    folder = course.reports_dir / "ps1"
    assert path == folder / "report.html"
    images = ["hist_test_squares.png", "hist_test_mean_partial.png", "hist_test_normalise.png", "score_histogram.png"]
    for name in images:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    html = path.read_text()
    squares = html.split("test_squares (2 points)")[1].split("<h3>")[0]
    assert "pass rate (full points) 33% (1 of 3)" in squares and "lost points: 2" in squares
    assert HIDDEN_MARKER in squares and "your code raised ValueError" in squares
    normalise = html.split("test_normalise (3 points)")[1].split("<h3>")[0]
    assert "pass rate (full points) 100% (3 of 3)" in normalise
    assert SCRIPT not in html
    rows = list(csv.DictReader((folder / "lms.csv").open()))
    assert [(r["student_id"], r["score"], r["max_score"], r["percent"], r["pending"]) for r in rows] == [
        ("ada", "9", "10", "90.0", "yes"),
        ("bob", "7", "10", "70.0", "yes"),
        ("cy", "7", "10", "70.0", "yes"),
    ]


def test_cli_feedback_and_report(graded):
    course, _ = graded
    runner = CliRunner()
    shutil.rmtree(course.root / "feedback", ignore_errors=True)
    out = runner.invoke(cli, ["feedback", "ps1", "--course", str(course.root)])
    assert out.exit_code == 0, out.output
    assert "feedback for 3 student(s)" in out.output
    assert HIDDEN_MARKER not in (course.root / "feedback" / "cy" / "ps1" / "feedback.html").read_text()
    out = runner.invoke(cli, ["feedback", "ps1", "--published", "--course", str(course.root)])
    assert out.exit_code == 0, out.output
    assert HIDDEN_MARKER in (course.root / "feedback" / "cy" / "ps1" / "feedback.html").read_text()
    (course.reports_dir / "ps1" / "report.html").unlink(missing_ok=True)
    out = runner.invoke(cli, ["report", "ps1", "--course", str(course.root)])
    assert out.exit_code == 0, out.output
    assert str(course.reports_dir / "ps1" / "report.html") in out.output
    assert (course.reports_dir / "ps1" / "report.html").exists()
