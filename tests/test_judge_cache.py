"""The judge's warm state: read-only cells computed once per worker give the same values as a cold judge."""

from __future__ import annotations

import nbformat
import numpy as np

from autograder.grading.judge import Judge, JudgeCache
from autograder.sandbox.inside import wire

SETUP = "import numpy as np\n"
HELPER = "def scaled(x, scale=2.0):\n    return np.asarray(x) * scale\n\nbase = scaled(np.arange(3))\n"
RANDOM = "noise = np.random.rand(4)\n"
TEST = "drawn = np.random.rand(2)\n"


class NoStudent:
    """A student process that defined nothing: enough for tests that use only trusted names."""

    def request(self, header: dict, buffers: list, timeout: float) -> tuple[dict, list]:
        assert header["op"] == "bind", header  # the judge only asks which names the student defined
        tree, buffers = wire.encode({"modules": {}, "values": {}}, make_handle=None)
        return {"ok": True, "value": tree}, buffers


def readonly(code: str, grade_id: str):
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "locked": True, "solution": False, "grade": False,
                                 "schema_version": 3}  # fmt: skip
    return cell


def run(judge: Judge, with_test: bool) -> dict:
    judge.run_readonly(SETUP, "setup")
    judge.run_readonly(HELPER, "helper")
    if with_test:  # a test between read-only cells that draws from the global generator
        judge.run_test(TEST, "test_draw", 1.0, 10.0)
    judge.run_readonly(RANDOM, "random")
    return {name: judge.namespace[name] for name in ("base", "noise")}


def test_warm_and_cold_judges_draw_the_same_random_numbers():
    for with_test in (False, True):
        cold = run(Judge(NoStudent(), None), with_test)
        cache = JudgeCache()
        first = run(Judge(NoStudent(), cache), with_test)
        second = run(Judge(NoStudent(), cache), with_test)
        for values in (first, second):
            np.testing.assert_array_equal(values["noise"], cold["noise"])
            np.testing.assert_array_equal(values["base"], cold["base"])


def test_each_submission_starts_from_the_same_global_random_state():
    outputs = []
    for earlier_draws in (7, 3):
        np.random.rand(earlier_draws)  # whatever ran before in this worker
        judge = Judge(NoStudent(), None)
        judge.run_readonly(SETUP, "setup")
        outputs.append(judge.run_test("print(np.random.rand())", "t", 1.0, 10.0).output)
    assert outputs[0] == outputs[1] != ""


class StudentWith:
    """A student process whose globals are `values` (plain data)."""

    def __init__(self, **values):
        self.values = values

    def request(self, header: dict, buffers: list, timeout: float) -> tuple[dict, list]:
        assert header["op"] == "bind", header
        found = {name: self.values[name] for name in header["names"] if name in self.values}
        tree, buffers = wire.encode({"modules": {}, "values": found}, make_handle=None)
        return {"ok": True, "value": tree}, buffers


def test_a_local_of_a_read_only_helper_does_not_hide_the_students_global():
    """`stopper` is a local of the helper, not a name the read-only cell owns: a test that reads the
    student's `stopper` must get the student's value (a correct a8 draft lost 8 points to this)."""
    judge = Judge(StudentWith(stopper=7, threshold=0.5), JudgeCache())
    judge.run_readonly("def run_curve(losses):\n    stopper = len(losses)\n    return stopper\n", "helper")
    outcome = judge.run_test("assert run_curve([1, 2]) == 2\nassert stopper == 7, stopper", "test_stop", 1.0, 10.0)
    assert outcome.score == 1.0, outcome.message
    outcome = judge.run_test("def pick():\n    threshold = 0.9\n    return threshold\nassert threshold == 0.5",
                             "test_threshold", 1.0, 10.0)  # fmt: skip
    assert outcome.score == 1.0, outcome.message
