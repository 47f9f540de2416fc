"""Correct work earns its points: variants a student could write from the text, graded, full marks.

Each case was misgraded once (issue 17): the text taught one thing and a hidden test demanded more.
"""

import shutil

import nbformat

from autograder.batch.coordinator import grade_batch
from autograder.course import Course
from autograder.notebook import cells

A1_SOFTMAX_FROM_THE_TEXT = '''def softmax_loss(scores, y):
    N = scores.shape[0]
    row_max = np.max(scores, axis=1, keepdims=True)  # (N, 1)
    log_sum_exp = row_max[:, 0] + np.log(np.sum(np.exp(scores - row_max), axis=1))  # (N,)
    loss = np.mean(log_sum_exp - scores[np.arange(N), y])  # -log p[y] = log sum exp - s[y]
    p = np.exp(scores - log_sum_exp[:, None])  # (N, C)
    p[np.arange(N), y] -= 1
    return loss, p / N
'''

A3_CONV_WITH_THE_DIVISIBILITY_ASSERT = (
    "    K, _, HF, WF = w.shape\n",
    "    K, _, HF, WF = w.shape\n"
    '    assert (H + 2 * pad - HF) % stride == 0, "height does not work"  # as in cs231n\'s starter code\n'
    '    assert (W + 2 * pad - WF) % stride == 0, "width does not work"\n',
)


def _grade_variant(repo_course: Course, tmp_path, assignment: str, change) -> dict[str, float]:
    """Grade the posted solution with `change(cell)` applied to its cells: {test: score}."""
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(repo_course.root / "nbgrader_config.py", root)
    for folder in ("source", "release", "solutions"):
        shutil.copytree(repo_course.root / folder / assignment, root / folder / assignment)
    course = Course.load(root)
    for path in (course.solutions_dir / assignment).glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            change(cell)
        target = course.submitted_dir / "variant" / assignment
        target.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target / path.name)
    (result,) = grade_batch(course, assignment, workers=1, show_progress=False).results
    assert not result.problems, result.problems
    return {c.grade_id: (c.score, c.max_points, c.message) for c in result.cells if not c.manual}


def test_a1_softmax_written_as_the_text_teaches_earns_full_points(repo_course, tmp_path):
    def change(cell):
        if cells.grade_id(cell) == "softmax_loss":
            cell.source = A1_SOFTMAX_FROM_THE_TEXT

    scores = _grade_variant(repo_course, tmp_path, "a1_backprop", change)
    score, max_points, message = scores["test_softmax_loss"]
    assert score == max_points == 8, message


def test_a3_convolution_with_cs231ns_divisibility_assert_earns_full_points(repo_course, tmp_path):
    def change(cell):
        if cells.grade_id(cell) == "conv":
            assert cell.source.count(A3_CONV_WITH_THE_DIVISIBILITY_ASSERT[0]) == 2  # forward and backward
            cell.source = cell.source.replace(*A3_CONV_WITH_THE_DIVISIBILITY_ASSERT)

    scores = _grade_variant(repo_course, tmp_path, "a3_cnn", change)
    for test in ("test_conv_forward", "test_conv_backward"):
        score, max_points, message = scores[test]
        assert score == max_points > 0, f"{test}: {message}"
