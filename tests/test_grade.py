"""`course grade` end to end on the small fixture course: scores, reports, gradebook, visibility."""

import csv
import json
import os
import subprocess
import sys

import nbformat
import pytest

from autograder.batch.coordinator import grade_batch
from autograder.grading.grade import AssignmentSource, grade_submission
from tests.helpers import MEAN_OK, NORMALISE_OK, SQUARES_OK, submit

HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"


def _grade_all(course):
    report = grade_batch(course, "ps1", workers=2, show_progress=False)
    return {result.student: result for result in report.results}


def test_scores_partial_credit_and_manual_cells(released):
    submit(released, "ps1", "solution")
    submit(released, "ps1", "blank", {})
    submit(
        released,
        "ps1",
        "partial",
        {
            "squares": SQUARES_OK,
            "normalise": NORMALISE_OK,
            "mean": "def mean(xs):\n    return sum(xs) / len(xs) if len(xs) > 1 else 0",
        },
    )
    results = _grade_all(released)
    assert results["solution"].score == 9 and results["solution"].auto_max == 9
    assert results["blank"].score == 0
    # mean is right on 3 of the 4 cases: the test cell's last expression gives 3/4 * 4 points
    by_id = {cell.grade_id: cell for cell in results["partial"].cells}
    assert by_id["test_mean_partial"].score == 3.0
    assert results["partial"].score == 2 + 3 + 3
    assert by_id["why_zero"].manual and by_id["why_zero"].max_points == 1
    assert all(result.isolation for result in results.values())
    # autograded notebooks (outputs, errors, verdicts, answers) are valid nbformat 4; their nodes are built
    # without nbformat's per-node check (autograder/notebook/nbnodes.py)
    kinds = {}
    for student in results:
        notebook = nbformat.read(released.autograded_dir / student / "ps1" / "ps1.ipynb", as_version=4)
        nbformat.validate(notebook)
        kinds[student] = {o.output_type for c in notebook.cells if c.cell_type == "code" for o in c.outputs}
    assert "error" in kinds["blank"] and "stream" in kinds["solution"]


def test_gradebook_export_matches_grades_csv(released, tmp_path):
    submit(released, "ps1", "solution")
    submit(released, "ps1", "blank", {})
    submit(released, "ps1", "halfway", {"squares": SQUARES_OK, "mean": MEAN_OK})
    _grade_all(released)
    ours = {
        row["student_id"]: float(row["score"])
        for row in csv.DictReader((released.reports_dir / "ps1" / "grades.csv").open())
    }
    exported = tmp_path / "export.csv"
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--to", str(exported)],
        cwd=released.root,
        check=True,
        capture_output=True,
    )
    theirs = {row["student_id"]: float(row["score"]) for row in csv.DictReader(exported.open())}
    assert ours == theirs == {"solution": 9.0, "blank": 0.0, "halfway": 6.0}


def test_hidden_messages_only_where_visibility_allows(released):
    # right on the public inputs, wrong on the hidden one (n = 10)
    cheat = "def squares(n):\n    return [1, 4, 9][:n] if n <= 3 else []"
    submit(released, "ps1", "cheat", {"squares": cheat, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    results = _grade_all(released)
    cell = next(c for c in results["cheat"].cells if c.grade_id == "test_squares")
    assert cell.score == 0 and cell.hidden_failed and HIDDEN_MARKER in cell.message

    results_json = json.loads((released.reports_dir / "ps1" / "results" / "cheat.json").read_text())
    test = next(t for t in results_json["tests"] if t["name"].endswith("test_squares"))
    assert test["visibility"] == "after_published" and HIDDEN_MARKER in test["output"]
    for t in results_json["tests"]:
        if HIDDEN_MARKER in t["output"]:
            assert t["visibility"] == "after_published"
    student_visible = [released.autograded_dir, released.reports_dir / "ps1" / "grades.csv", released.release_dir]
    for place in student_visible:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for path in files:
            assert HIDDEN_MARKER not in path.read_text(errors="replace"), path
    # The gradebook holds the source (as nbgrader's own does: instructors only); its comments, which go to
    # students with feedback, must not carry hidden messages.
    from nbgrader.api import Gradebook

    with Gradebook(released.db_url) as gradebook:
        comments = [c.auto_comment or "" for c in gradebook.find_submission_notebook("ps1", "ps1", "cheat").comments]
    assert not any(HIDDEN_MARKER in comment for comment in comments)


def test_cell_order_and_student_cells_are_respected(released):
    # A helper defined in a cell the student added, used by their solution; and a test cell the student
    # tampered with (points, code) is restored from the source.
    folder = submit(
        released,
        "ps1",
        "tamper",
        {
            "squares": "def squares(n):\n    return [sq(i) for i in range(1, n + 1)]",
            "test_squares": "pass",
            "mean": MEAN_OK,
            "normalise": NORMALISE_OK,
        },
        extra_cells=[],
    )
    import nbformat

    path = folder / "ps1.ipynb"
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "squares")
    nb.cells.insert(index, nbformat.v4.new_code_cell("def sq(i):\n    return i * i"))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_squares":
            cell.metadata["nbgrader"]["points"] = 100
    nbformat.write(nb, path)
    result = grade_submission(AssignmentSource.load(released, "ps1"), folder, "tamper")
    assert result.score == 9 and result.auto_max == 9


@pytest.mark.parametrize(
    "content, reason",
    [
        (lambda: b"{not json", "invalid JSON"),
        (lambda: b"\x00\xff\x10binary junk", "not a notebook"),
        (lambda: json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}).encode(),
         "nbformat 3"),
        (lambda: json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": "nope", "metadata": {}}).encode(),
         "not a notebook"),
        (lambda: b'{"cells": [{"source": "' + b"x" * 100_000_000 + b'"}]}', "over the 20 MiB limit"),
    ],
    ids=["invalid-json", "binary", "nbformat3", "cells-not-a-list", "100MB-cell"],
)  # fmt: skip
def test_malformed_notebooks_are_recorded(released, content, reason):
    folder = released.submitted_dir / "bad" / "ps1"
    folder.mkdir(parents=True)
    (folder / "ps1.ipynb").write_bytes(content())
    submit(released, "ps1", "good")
    results = _grade_all(released)
    assert results["good"].score == 9, "one bad submission must not disturb the batch"
    assert results["bad"].score == 0 and reason in " ".join(results["bad"].problems)
    assert "\n" not in results["bad"].problems[0]


def test_missing_cells_kernelspec_and_huge_cells(released):
    import nbformat

    folder = submit(released, "ps1", "odd", {"squares": SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    path = folder / "ps1.ipynb"
    nb = nbformat.read(path, as_version=4)
    del nb.metadata["kernelspec"]
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "mean"]  # deleted
    normalise = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "normalise")
    nb.cells.append(nbformat.from_dict(dict(normalise)))  # duplicated
    test_mean = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_mean_partial")
    test_mean.cell_type = "markdown"  # a test cell turned into markdown: restored from the source anyway
    test_mean.pop("outputs", None)
    test_mean.pop("execution_count", None)
    nb.cells.append(nbformat.v4.new_code_cell("x = 1\n" * 200_000))  # a 1.2 MB cell
    nbformat.write(nb, path)
    result = grade_submission(AssignmentSource.load(released, "ps1"), folder, "odd")
    assert result.score == 2 + 3  # mean was deleted
    notes = " ".join(result.findings)
    assert "'mean' was deleted" in notes and "more than once" in notes and "not run" in notes


def test_empty_folder_and_missing_notebook(released):
    (released.submitted_dir / "empty" / "ps1").mkdir(parents=True)
    folder = released.submitted_dir / "renamed" / "ps1"
    folder.mkdir(parents=True)
    (released.solutions_dir / "ps1" / "ps1.ipynb").rename(folder / "my_ps1.ipynb")
    results = _grade_all(released)
    assert results["empty"].score == 0 and "not submitted" in results["empty"].problems[0]
    assert "found: my_ps1.ipynb" in results["renamed"].problems[0]


def test_cli_exit_codes(released):
    submit(released, "ps1", "good")
    command = [sys.executable, "-m", "autograder.cli", "grade", "ps1", "--course", str(released.root)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "isolation: bubblewrap" in done.stdout or "isolation: reduced" in done.stdout
    (released.submitted_dir / "junk" / "ps1").mkdir(parents=True)
    (released.submitted_dir / "junk" / "ps1" / "ps1.ipynb").write_text("junk")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1, "graded, but a submission had problems"
    (released.source_dir / "ps1" / "ps1.ipynb").write_text("{}")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2, "the course itself is broken: the grader failed"


def test_without_bubblewrap_grading_still_works_and_says_isolation_is_reduced(released):
    submit(released, "ps1", "good")
    command = [sys.executable, "-m", "autograder.cli", "grade", "ps1", "--course", str(released.root)]
    env = {**os.environ, "COURSE_NO_BUBBLEWRAP": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "isolation: reduced: bubblewrap turned off" in done.stdout and "WARNING: isolation is reduced" in done.stdout
    results = json.loads((released.reports_dir / "ps1" / "results" / "good.json").read_text())
    assert results["score"] == 9 and "isolation reduced" in results["output"]


def test_stop_after_loss_ends_the_student_process_at_the_first_lost_point(released):
    """`course validate --quick`: a seeded bug is graded only up to the first test it fails."""
    source = AssignmentSource.load(released, "ps1")
    wrong_first = {"squares": "def squares(n):\n    return [0] * n", "mean": MEAN_OK, "normalise": NORMALISE_OK}
    folder = submit(released, "ps1", "quick", wrong_first)
    full = grade_submission(source, folder, "quick")
    quick = grade_submission(source, folder, "quick", stop_after_loss=True)
    scores = {c.grade_id: c.score for c in full.cells if not c.manual}
    first_loss = next(gid for gid, score in scores.items() if score == 0)
    after = [c for c in quick.cells if not c.manual][list(scores).index(first_loss) + 1 :]
    assert full.score > 0 and after, "the fixture needs points after the first failing test"
    assert quick.score < full.score and all(c.score == 0 for c in after)
    assert all(f"stopped after {first_loss}" in c.message for c in after), [c.message for c in after]


def test_libraries_that_ask_for_the_user_name_work_in_the_sandbox(tmp_path):
    """The sandbox uid has no passwd entry. getpass.getuser() must still answer: torch names its compile
    cache after the user, and on a CUDA runner (torch 2.11) `import torch._dynamo`, which torch.optim does,
    failed halfway without it, and every later try failed too."""
    from autograder.grading.student_process import ColdStudentProcess

    with ColdStudentProcess(tmp_path) as student:
        answer = student.run_cell("import getpass\nprint(getpass.getuser())", timeout=60, label="whoami")
    assert answer["error"] is None, answer["error"]
    assert answer["stdout"].strip() == "student"
