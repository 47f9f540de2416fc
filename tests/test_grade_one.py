"""`course grade-one`, the CI command: one submission, Gradescope's results.json, exit 0 whenever it graded."""

import json
import shutil
import subprocess
import sys

import jsonschema
import pytest
from click.testing import CliRunner

from autograder.cli import cli
from autograder.course import REPO_ROOT
from autograder.grading.parts import cuda_device_count
from autograder.records.reports import RESULTS_SCHEMA

A1 = "a1_backprop"
SOLUTION = REPO_ROOT / "solutions" / A1 / f"{A1}.ipynb"
BLANK = REPO_ROOT / "release" / A1 / f"{A1}.ipynb"

# Gradescope's autograder results format (the fields we promise), as a JSON schema.
GRADESCOPE_RESULTS = json.loads(RESULTS_SCHEMA.read_text())


def grade_one(submission, tmp_path, *extra, assignment=A1, course=REPO_ROOT):
    """Run the real command in a fresh process, as CI does; return (exit code, results.json or None, output)."""
    results = tmp_path / "out" / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade-one", str(submission), "--assignment", assignment,
         "--results", str(results), "--course", str(course), *extra],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    data = json.loads(results.read_text()) if results.exists() else None
    return done.returncode, data, done.stdout + done.stderr


def check_schema(data: dict) -> None:
    jsonschema.validate(data, GRADESCOPE_RESULTS)
    assert data["score"] == pytest.approx(sum(test["score"] for test in data["tests"]))
    assert all(test["score"] <= test["max_score"] for test in data["tests"])


def test_solution_earns_every_autograded_point(tmp_path):
    code, data, output = grade_one(SOLUTION, tmp_path)
    assert code == 0, output
    check_schema(data)
    assert data["score"] == data["max_score"] == sum(t["max_score"] for t in data["tests"]) == 90
    assert {t["visibility"] for t in data["tests"]} <= {"visible", "after_published"}
    assert "90/90" in output


def test_blank_release_scores_zero_and_still_exits_0(tmp_path):
    code, data, output = grade_one(BLANK, tmp_path)
    assert code == 0, output
    check_schema(data)
    assert data["score"] == 0 and len(data["tests"]) == 16
    assert all(test["output"] for test in data["tests"]), "every lost point says why"


def test_garbage_notebook_is_graded_zero_with_the_reason(tmp_path):
    garbage = tmp_path / "homework.ipynb"
    garbage.write_bytes(b"{this is not json")
    code, data, output = grade_one(garbage, tmp_path)
    assert code == 0, output
    check_schema(data)
    assert data["score"] == 0
    assert "not a notebook" in data["output"]
    assert all("not graded" in test["output"] for test in data["tests"])


def test_unknown_assignment_is_a_grader_failure(tmp_path):
    code, data, output = grade_one(SOLUTION, tmp_path, assignment="a9_nothing")
    assert code == 2 and data is None
    assert "unknown assignment 'a9_nothing'" in output and "Traceback" not in output


def test_broken_course_is_a_grader_failure(tmp_path):
    course = tmp_path / "course"
    (course / "source" / A1).mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
    (course / "source" / A1 / f"{A1}.ipynb").write_text("{broken")
    code, data, output = grade_one(SOLUTION, tmp_path, course=course)
    assert code == 2 and data is None
    assert "not a readable notebook" in output and "Traceback" not in output
    code, data, output = grade_one(SOLUTION, tmp_path, course=tmp_path / "nowhere")
    assert code == 2 and "nbgrader_config.py: not found" in output


def test_a_crash_inside_the_grader_exits_2_without_results(tmp_path, monkeypatch):
    import autograder.grading.grade

    def crash(*args, **kwargs):
        raise RuntimeError("bubblewrap exploded")

    monkeypatch.setattr(autograder.grading.grade, "grade_submission", crash)
    results = tmp_path / "results.json"
    done = CliRunner().invoke(
        cli, ["grade-one", str(SOLUTION), "--assignment", A1, "--results", str(results), "--course", str(REPO_ROOT)]
    )
    assert done.exit_code == 2
    assert "the grader failed: RuntimeError: bubblewrap exploded" in done.output
    assert not results.exists()


def test_gpu_part_without_cuda_is_a_grader_failure(tmp_path):
    """The [self-hosted, gpu] CI job on a runner without CUDA: the runner is wrong, not the submission."""
    if cuda_device_count():
        pytest.skip("this machine has a CUDA GPU")
    code, data, output = grade_one(SOLUTION, tmp_path, "--part", "gpu")
    assert code == 2 and data is None and "has no CUDA" in output and "refuses GPU jobs" in output, output
