"""Student self-check: course_utils.selfcheck in a kernel, the cells `course release` adds, `course check`,
and intake leaving self-check cells out of grading."""

import json
import subprocess
import sys

import nbformat
from click.testing import CliRunner
from nbclient import NotebookClient

from autograder.authoring.release import release
from autograder.cli import cli
from autograder.grading.intake import build_plan
from autograder.notebook import cells
from course_utils.selfcheck import check, check_all
from tests.helpers import MEAN_OK, NORMALISE_OK, SQUARES_OK, submit

TEST_CELL = """\
import numpy as np
from course_utils import assert_close
x = np.arange(6.0).reshape(2, 3)
out = double(x)
assert_close("out", out, 2 * x, hint="multiply every entry by 2")
assert out.dtype == np.float64
"""


def _notebook(folder, tests: dict[str, str], name="hw.ipynb"):
    nb = nbformat.v4.new_notebook()
    for grade_id, code in tests.items():
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 1, "solution": False}
        nb.cells.append(cell)
    nbformat.write(nb, folder / name)
    return folder / name


def _define(namespace: dict, code: str) -> dict:
    """Run code as a notebook cell would (its own file name, so tracebacks point into 'the cell')."""
    exec(compile(code, "<cell>", "exec"), namespace)
    return namespace


def test_rows_name_the_quantity_the_line_and_the_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path, {"test_double": TEST_CELL})
    wrong = _define({}, "def double(x):\n    out = 2 * x\n    out[1, 2] += 1\n    return out")
    result = check("hw.ipynb", "test_double", namespace=wrong)
    text = str(result)
    assert text.splitlines()[0] == "test_double: 1 of 2 public checks passed"
    assert "FAIL  line 5  assert_close(" in text
    assert "out: relative error 4.8e-02 > 1e-07, worst at [1, 2]" in text
    assert "hint: multiply every entry by 2" in text
    assert "PASS  line 6  assert out.dtype == np.float64" in text
    page = result._repr_html_()
    assert page.startswith('<table class="course-selfcheck">')
    assert '<td class="fail"' in page and ">FAIL</td>" in page and '<td class="pass"' in page
    assert not result.ok

    right = _define({}, "def double(x):\n    return 2 * x")
    assert check("hw.ipynb", "test_double", namespace=right).ok


def test_a_failing_setup_statement_is_an_error_and_stops_the_test(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path, {"test_double": TEST_CELL})
    stub = _define({}, "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    text = str(check("hw.ipynb", "test_double", namespace=stub))
    assert "ERROR line 4  out = double(x)" in text
    assert "double is not written yet (NotImplementedError at line 3 of its cell)" in text
    assert "(the 2 check(s) after it were not run)" in text
    assert "PASS" not in text and "FAIL" not in text

    text = str(check("hw.ipynb", "test_double", namespace={}))
    assert "NameError: name 'double' is not defined" in text
    assert "hint: run the cell that defines double first" in text


def test_bare_assert_shows_its_condition_and_html_is_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path, {"test_tag": 'assert tag() == "<b>"\nassert False, "<script>alert(1)</script>"'})
    result = check("hw.ipynb", "test_tag", namespace=_define({}, "def tag():\n    return '<i>'"))
    assert "assertion failed: tag() == \"<b>\"" in str(result)
    page = result._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "&lt;b&gt;" in page


def test_hidden_tests_put_back_by_nbgrader_autograde_are_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = 'assert 1 == 1\n### BEGIN HIDDEN TESTS\nassert False, "HIDDEN"\n### END HIDDEN TESTS\nassert 2 == 3'
    _notebook(tmp_path, {"test_mixed": code})
    text = str(check("hw.ipynb", "test_mixed", namespace={}))
    assert "HIDDEN" not in text and "1 of 2 public checks passed" in text
    assert "FAIL  line 5  assert 2 == 3" in text


def test_check_all_counts_test_cells(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path, {"test_double": TEST_CELL, "test_one": "assert one() == 1"})
    namespace = _define({}, "def double(x):\n    return 2 * x\n\ndef one():\n    return 2")
    result = check_all("hw.ipynb", namespace=namespace)
    text = str(result)
    assert text.splitlines()[-1] == "Public tests passed: 1 of 2"
    assert text.splitlines()[0].startswith("PASS  test_double")
    assert "FAIL  test_one" in text and "assertion failed: one() == 1" in text
    page = result._repr_html_()
    assert "Public tests passed: 1 of 2" in page and page.count('<td class="pass"') == 1


def test_renamed_or_forged_notebook_gives_a_message_not_an_exception(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path, {"test_double": TEST_CELL}, name="hw (copy).ipynb")
    for result in (check("hw.ipynb", "test_double", namespace={}), check_all("hw.ipynb", namespace={})):
        assert "hw.ipynb not found" in str(result) and "notebooks there: hw (copy).ipynb" in str(result)
        assert "if you renamed or moved it" in str(result) and not result.ok
        assert '<td class="error"' in result._repr_html_()

    (tmp_path / "hw.ipynb").write_text("{not json")
    assert "could not be read as a course notebook" in str(check("hw.ipynb", "test_double", namespace={}))
    (tmp_path / "hw.ipynb").write_text(json.dumps({"cells": "nope"}))
    assert "could not be read" in str(check_all("hw.ipynb", namespace={}))
    _notebook(tmp_path, {"test_other": "assert True"})
    assert "has no test cell 'test_double'" in str(check("hw.ipynb", "test_double", namespace={}))


# --- in a real kernel, on the course's own release --------------------------------------------------------


def test_committed_release_has_a_locked_selfcheck_after_every_test_cell(repo_course):
    path = repo_course.release_dir / "a1_backprop" / "a1_backprop.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell, after in zip(nb.cells, nb.cells[1:], strict=False):
        if cells.role(cell) == "test":
            assert cells.is_selfcheck(after), f"no self-check after {cells.grade_id(cell)}"
            call = f'check("a1_backprop.ipynb", "{cells.grade_id(cell)}")'
            assert after.source == f"from course_utils.selfcheck import check\n{call}"
            assert after.metadata["editable"] is False and after.metadata["deletable"] is False
            assert "nbgrader" not in after.metadata
    assert nb.cells[-1].source == 'from course_utils.selfcheck import check_all\ncheck_all("a1_backprop.ipynb")'
    assert cells.is_selfcheck(nb.cells[-1]) and cells.is_selfcheck(nb.cells[-2])


def test_a1_with_solutions_passes_and_a_bug_fails_in_a_real_kernel(repo_course, tmp_path):
    """The released a1 with the posted solutions pasted in: every self-check passes; then one bug."""
    nb = nbformat.read(repo_course.release_dir / "a1_backprop" / "a1_backprop.ipynb", as_version=4)
    posted = nbformat.read(repo_course.solutions_dir / "a1_backprop" / "a1_backprop.ipynb", as_version=4)
    solutions = {cells.grade_id(c): c.source for c in posted.cells if cells.role(c) == "solution"}
    for cell in nb.cells:
        if cell.cell_type == "code" and cells.role(cell) == "solution":
            cell.source = solutions[cells.grade_id(cell)]
    nbformat.write(nb, tmp_path / "a1_backprop.ipynb")
    selfchecks = [i for i, cell in enumerate(nb.cells) if cells.is_selfcheck(cell) and cell.cell_type == "code"]
    bug = (
        "right = affine_backward\n\ndef affine_backward(dout, cache):"
        "\n    dx, dw, db = right(dout, cache)\n    return dx, 1.01 * dw, db"
    )
    nb.cells += [
        nbformat.v4.new_code_cell(bug),
        nbformat.v4.new_code_cell('check("a1_backprop.ipynb", "test_affine_backward")'),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    for index in selfchecks:
        (output,) = nb.cells[index].outputs
        assert "FAIL" not in output.data["text/plain"] and "ERROR" not in output.data["text/plain"]
        assert 'class="fail"' not in output.data["text/html"] and 'class="pass"' in output.data["text/html"]
    final = nb.cells[selfchecks[-1]].outputs[0].data
    assert final["text/plain"].endswith("Public tests passed: 16 of 16")
    assert "Public tests passed: 16 of 16" in final["text/html"]

    (output,) = nb.cells[-1].outputs
    text = output.data["text/plain"]
    assert "FAIL  line 8  assert_close(\"dw\"" in text
    assert "dw: relative error" in text and "which product gives that?" in text
    assert '<td class="fail"' in output.data["text/html"]


# --- `course check` and intake, on the small fixture course ---------------------------------------------------


def test_course_check_exit_codes(fixture_course, tmp_path):
    release(fixture_course, "ps1", execute_solutions=False)
    done = submit(fixture_course, "ps1", "done", {"squares": SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    blank = submit(fixture_course, "ps1", "blank", {})
    runner = CliRunner()

    result = runner.invoke(cli, ["check", str(done / "ps1.ipynb"), "--course", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("Public tests passed: 3 of 3")

    result = runner.invoke(cli, ["check", str(blank / "ps1.ipynb"), "--course", str(fixture_course.root)])
    assert result.exit_code == 1, result.output
    assert "squares is not written yet" in result.output and "Public tests passed: 0 of 3" in result.output

    (tmp_path / "broken.ipynb").write_text("{not json")
    for name, message in [("missing.ipynb", "no such notebook"), ("broken.ipynb", "not a readable notebook")]:
        done = subprocess.run(
            [sys.executable, "-m", "autograder.cli", "check", str(tmp_path / name)], capture_output=True, text=True
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_intake_leaves_selfcheck_cells_out_without_a_finding(fixture_course):
    release(fixture_course, "ps1", execute_solutions=False)
    folder = submit(fixture_course, "ps1", "student", {"squares": SQUARES_OK}, extra_cells=["print('mine')"])
    student = nbformat.read(folder / "ps1.ipynb", as_version=4)
    assert sum(cells.is_selfcheck(cell) for cell in student.cells) == 5  # 3 tests, the intro, check_all
    source = nbformat.read(fixture_course.source_dir / "ps1" / "ps1.ipynb", as_version=4)
    plan = build_plan("ps1.ipynb", source, student)
    assert not any("course_utils.selfcheck" in cell.code for cell in plan.cells)
    assert any(cell.code == "print('mine')" for cell in plan.cells), "the student's own cell must still run"
    assert plan.findings == []
