"""GPU-tagged tests: a CPU grading leaves them pending ("waiting for GPU runner", never 0) in every report;
a worker without CUDA refuses GPU parts; a CPU part merged with a GPU part is a whole grading."""

import json
import subprocess
import sys

import jsonschema
import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.batch import pool
from autograder.batch.coordinator import grade_batch
from autograder.course import FAKE_CUDA_ENV
from autograder.grading import parts
from autograder.grading.grade import AssignmentSource, grade_submission
from autograder.records.reports import RESULTS_SCHEMA
from tests.helpers import submit

DOUBLE_WRONG = "def double(x):\n    return x"


@pytest.fixture
def ps2(released):
    submit(released, "ps2", "ada")
    submit(released, "ps2", "bob", {"double": DOUBLE_WRONG})
    return released


def _scores(result):
    return [(c.grade_id, c.score, c.pending) for c in result.cells]


def test_a_cpu_grading_leaves_gpu_tests_waiting_for_a_gpu_runner_in_every_report(ps2):
    report = grade_batch(ps2, "ps2", workers=1, gpu_tests="wait", show_progress=False)
    by_student = {r.student: r for r in report.results}
    assert _scores(by_student["ada"]) == [("test_double", 2, False), ("test_train", None, True)]
    assert _scores(by_student["bob"]) == [("test_double", 0, False), ("test_train", None, True)]
    assert by_student["ada"].cells[1].message == "waiting for GPU runner"
    assert len(report.waiting_for_gpu) == 2

    results = json.loads((ps2.reports_dir / "ps2" / "results" / "ada.json").read_text())
    jsonschema.validate(results, json.loads(RESULTS_SCHEMA.read_text()))  # a pending test is still Gradescope's format
    train = next(t for t in results["tests"] if t["name"].endswith("test_train"))
    assert "score" not in train and train["output"] == "waiting for GPU runner"
    assert results["score"] == 2 and "1 GPU test(s) waiting for GPU runner" in results["output"]

    rows = (ps2.reports_dir / "ps2" / "grades.csv").read_text().splitlines()
    assert rows[0] == "student_id,score,max_score,test_double,test_train,problems"
    assert rows[1] == "ada,2,5,2,waiting for GPU runner,"

    autograded = nbformat.read(ps2.autograded_dir / "ada" / "ps2" / "ps2.ipynb", as_version=4)
    test_cell = next(c for c in autograded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_train")
    assert "waiting for GPU runner" in test_cell.outputs[0]["text"]

    with Gradebook(ps2.db_url) as gradebook:
        grade = gradebook.find_grade("test_train", "ps2", "ps2", "ada")
        assert grade.auto_score is None and grade.needs_manual_grade  # pending, not 0
        comment = gradebook.find_comment("train", "ps2", "ps2", "ada")  # the GPU-tagged solution cell
        assert comment.auto_comment == "waiting for GPU runner: test_train"


def test_a_gpu_part_is_refused_by_a_worker_without_cuda(ps2, monkeypatch):
    monkeypatch.delenv(FAKE_CUDA_ENV, raising=False)
    parts.cuda_device_count.cache_clear()
    if parts.cuda_device_count():
        pytest.skip("this machine has CUDA")
    slot = pool.GradingSlot(0, str(ps2.root))
    with pytest.raises(parts.NoCuda, match="refuses GPU jobs"):
        slot.grade("ps2", "ada", str(ps2.submitted_dir / "ada" / "ps2"), part="gpu")
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "worker", "--queue", "gpu", "--broker", "redis://127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "refuses GPU jobs" in done.stderr


def test_cpu_part_merged_with_gpu_part_is_the_whole_grading(ps2):
    source = AssignmentSource.load(ps2, "ps2")
    for student in ("ada", "bob"):
        folder = ps2.submitted_dir / student / "ps2"
        whole = grade_submission(source, folder, student)
        cpu = grade_submission(source, folder, student, part="cpu")
        gpu = grade_submission(source, folder, student, part="gpu")
        assert [c.grade_id for c in gpu.cells] == ["test_train"]
        merged = parts.merge(cpu, gpu)
        assert _scores(merged) == _scores(whole) and merged.score == whole.score
        notebook = parts.merge_notebook(cpu.autograded["ps2.ipynb"], gpu.autograded["ps2.ipynb"], {"test_train"})
        expected = whole.autograded["ps2.ipynb"]
        assert [c.get("outputs") for c in notebook.cells] == [c.get("outputs") for c in expected.cells]


class _GpuPartsFirst:
    """An executor that grades here and delivers every GPU part before any CPU part, as a real CUDA runner
    does when its GPU parts finish before the CPU workers get to the same submissions."""

    def __init__(self, course, assignment):
        self.source = AssignmentSource.load(course, assignment)

    def run(self, jobs, on_start, on_result):
        for job in sorted(jobs, key=lambda job: job.part != "gpu"):
            job.attempts = on_start(job)
            on_result(job, "done", grade_submission(self.source, job.folder, job.student, part=job.part))


def test_a_gpu_part_that_arrives_before_its_cpu_part_is_merged_when_that_comes(ps2, monkeypatch):
    """Seen on a real H100: the GPU part of a submission came back first, and the coordinator, finding no
    CPU part to merge it into yet, crashed writing the reports."""
    from autograder.batch import coordinator

    monkeypatch.setattr(coordinator, "_executor", lambda course, assignment, *rest: _GpuPartsFirst(course, assignment))
    report = grade_batch(ps2, "ps2", backend="celery", show_progress=False)
    source = AssignmentSource.load(ps2, "ps2")
    expected = {}
    for result in report.results:
        whole = grade_submission(source, ps2.submitted_dir / result.student / "ps2", result.student)
        assert _scores(result) == _scores(whole)
        written = json.loads((ps2.reports_dir / "ps2" / "results" / f"{result.student}.json").read_text())
        assert written["score"] == whole.score
        expected[result.student] = whole.score
    assert sorted(expected) == ["ada", "bob"] and expected["ada"] > expected["bob"]
    gradebook = Gradebook(ps2.db_url, ps2.course_id)
    try:
        assert {s.student_id: s.score for s in gradebook.assignment_submissions("ps2")} == expected
    finally:
        gradebook.close()
