"""`course similarity`: copied solution code ranks first whatever its disguise, honest work scores low, bad
input is reported, and the page keeps student code as text."""

import csv
import shutil
import subprocess
import sys

import nbformat
import pytest
from click.testing import CliRunner

from autograder.cli import cli
from autograder.course import Course
from autograder.records import fingerprints
from autograder.records.similarity_report import write_similarity_report
from tests.conftest import FIXTURE_COURSE

COPIED_AT_LEAST = 0.9  # a copy with renamed variables, reordered functions and new comments scores this much
HONEST_BELOW = 0.2  # students who share only the release code (and the obvious idioms) score below this
SCRIPT = "</script><script>alert(1)</script>"

STUBS = {
    "stats": 'def normalise(v):\n    """Scale v to unit length."""\n    # YOUR CODE HERE\n'
    "    raise NotImplementedError()\n"
    '\n\ndef moving_average(xs, window):\n    """Mean of each window of xs."""\n    # YOUR CODE HERE\n'
    "    raise NotImplementedError()",
    "search": 'def nearest(points, query):\n    """Index of the point nearest to query."""\n    # YOUR CODE HERE\n'
    '    raise NotImplementedError()\n\n\ndef kmeans_step(points, centres):\n    """One step of k-means."""\n'
    "    # YOUR CODE HERE\n    raise NotImplementedError()",
}

ADA = {
    "stats": f'''def normalise(v):
    """Scale v to unit length."""
    total = 0.0
    for value in v:
        total += value * value  # sum of squares
    length = total ** 0.5
    if length == 0:
        return v
    return [value / length for value in v]


def moving_average(xs, window):
    """Mean of each window of xs."""
    label = "{SCRIPT}"
    sums = [0.0]
    for x in xs:
        sums.append(sums[-1] + x)  # prefix sums
    out = []
    for i in range(window, len(sums)):
        out.append((sums[i] - sums[i - window]) / window)
    return out
''',
    "search": '''def nearest(points, query):
    """Index of the point nearest to query."""
    best, best_d = None, float("inf")
    for index, p in enumerate(points):
        d = sum((a - b) ** 2 for a, b in zip(p, query))
        if d < best_d:
            best, best_d = index, d
    return best


def kmeans_step(points, centres):
    """One step of k-means."""
    groups = [[] for _ in centres]
    for p in points:
        groups[nearest(centres, p)].append(p)
    new = []
    for c, g in zip(centres, groups):
        if not g:
            new.append(c)
        else:
            new.append([sum(col) / len(g) for col in zip(*g)])
    return new
''',
}

# Ada's code with other names, the functions in the other order, other comments, docstrings and spacing.
BOB = {
    "stats": f'''def moving_average(xs, window):
  # running mean, see lecture 2
  tag = "{SCRIPT}"
  acc = [0.0]
  for item in xs:
      acc.append(acc[-1]+item)

  result = []
  for k in range(window, len(acc)):
      result.append((acc[k]-acc[k-window])/window)
  return result

def normalise(v):
  s = 0.0
  for elem in v:
      s += elem*elem
  norm = s**0.5
  if norm == 0:
      return v
  return [elem/norm for elem in v]   # unit vector
''',
    "search": '''def kmeans_step(points, centres):
    clusters = [[] for _ in centres]
    for pt in points:
        clusters[nearest(centres, pt)].append(pt)
    updated = []
    for centre, members in zip(centres, clusters):
        if not members:
            updated.append(centre)
        else:
            updated.append([sum(column) / len(members) for column in zip(*members)])
    return updated


def nearest(points, query):
    """Closest point."""
    winner, winner_dist = None, float("inf")
    for j, pt in enumerate(points):
        dist = sum((u - w) ** 2 for u, w in zip(pt, query))
        if dist < winner_dist:
            winner, winner_dist = j, dist
    return winner
''',
}

CY = {  # numpy, no loops
    "stats": '''def normalise(v):
    """Scale v to unit length."""
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v)
    return v if n == 0 else v / n


def moving_average(xs, window):
    """Mean of each window of xs."""
    kernel = np.ones(window) / window
    return np.convolve(np.asarray(xs, dtype=float), kernel, mode="valid").tolist()
''',
    "search": '''def nearest(points, query):
    """Index of the point nearest to query."""
    diffs = np.asarray(points) - np.asarray(query)
    return int(np.argmin((diffs ** 2).sum(axis=1)))


def kmeans_step(points, centres):
    """One step of k-means."""
    points, centres = np.asarray(points, dtype=float), np.asarray(centres, dtype=float)
    labels = np.array([nearest(centres, p) for p in points])
    return [points[labels == k].mean(axis=0).tolist() if np.any(labels == k) else c.tolist()
            for k, c in enumerate(centres)]
''',
}

DEE = {  # loops, written their own way
    "stats": '''def normalise(v):
    """Scale v to unit length."""
    import math
    length = math.sqrt(sum(x * x for x in v))
    if not length:
        return list(v)
    out = []
    for x in v:
        out.append(x / length)
    return out


def moving_average(xs, window):
    """Mean of each window of xs."""
    result = []
    for start in range(len(xs) - window + 1):
        chunk = xs[start:start + window]
        result.append(sum(chunk) / window)
    return result
''',
    "search": '''def nearest(points, query):
    """Index of the point nearest to query."""
    distances = []
    for p in points:
        distances.append(sum((p[i] - query[i]) ** 2 for i in range(len(query))))
    return distances.index(min(distances))


def kmeans_step(points, centres):
    """One step of k-means."""
    sums = {k: None for k in range(len(centres))}
    counts = {k: 0 for k in range(len(centres))}
    for p in points:
        k = nearest(centres, p)
        sums[k] = list(p) if sums[k] is None else [s + x for s, x in zip(sums[k], p)]
        counts[k] += 1
    return [centres[k] if counts[k] == 0 else [s / counts[k] for s in sums[k]] for k in range(len(centres))]
''',
}

EVE = {  # half numpy, half loops; sgd-style names
    "stats": '''def normalise(v):
    """Scale v to unit length."""
    arr = np.array(v, dtype=np.float64)
    return arr / max(np.sqrt(np.dot(arr, arr)), 1e-12)


def moving_average(xs, window):
    """Mean of each window of xs."""
    c = np.cumsum(np.insert(np.asarray(xs, dtype=float), 0, 0.0))
    return list((c[window:] - c[:-window]) / float(window))
''',
    "search": '''def nearest(points, query):
    """Index of the point nearest to query."""
    best = 0
    for i in range(1, len(points)):
        if np.sum((np.array(points[i]) - query) ** 2) < np.sum((np.array(points[best]) - query) ** 2):
            best = i
    return best


def kmeans_step(points, centres):
    """One step of k-means."""
    assignment = [nearest(centres, p) for p in points]
    out = []
    for k, centre in enumerate(centres):
        mine = [p for p, a in zip(points, assignment) if a == k]
        out.append(np.mean(mine, axis=0).tolist() if mine else centre)
    return out
''',
}


def _notebook(code_by_cell: dict[str, str]) -> nbformat.NotebookNode:
    """The assignment's notebook: a setup cell, two solution cells (with `code_by_cell` in them) and a test."""
    nb = nbformat.v4.new_notebook()
    setup = nbformat.v4.new_code_cell("import numpy as np")
    setup.metadata["nbgrader"] = {"grade_id": "setup", "locked": True, "solution": False, "grade": False,
                                  "schema_version": 3}  # fmt: skip
    nb.cells.append(setup)
    for gid in STUBS:
        cell = nbformat.v4.new_code_cell(code_by_cell.get(gid, STUBS[gid]))
        cell.metadata["nbgrader"] = {"grade_id": gid, "solution": True, "grade": False, "locked": False,
                                     "schema_version": 3}  # fmt: skip
        nb.cells.append(cell)
    test = nbformat.v4.new_code_cell("assert normalise([3, 4]) == [0.6, 0.8]")
    test.metadata["nbgrader"] = {"grade_id": "test_normalise", "solution": False, "grade": True, "locked": True,
                                 "points": 1, "schema_version": 3}  # fmt: skip
    nb.cells.append(test)
    return nb


def _submit(course: Course, student: str, code_by_cell: dict[str, str]) -> None:
    folder = course.submitted_dir / student / "hw"
    folder.mkdir(parents=True)
    nbformat.write(_notebook(code_by_cell), folder / "hw.ipynb")


@pytest.fixture
def course(tmp_path) -> Course:
    """A course with assignment hw released (no source needed to compare submissions)."""
    root = tmp_path / "course"
    (root / "release" / "hw").mkdir(parents=True)
    shutil.copy(FIXTURE_COURSE / "nbgrader_config.py", root)
    nbformat.write(_notebook({}), root / "release" / "hw" / "hw.ipynb")
    return Course.load(root)


@pytest.fixture
def batch(course) -> Course:
    """Ada and Bob share code (Bob disguised it); Cy, Dee and Eve worked alone; Fay submitted the release."""
    for student, code in [("ada", ADA), ("bob", BOB), ("cy", CY), ("dee", DEE), ("eve", EVE), ("fay", {})]:
        _submit(course, student, code)
    return course


def _rows(course: Course) -> list[dict]:
    with (course.reports_dir / "hw" / "similarity.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_disguises_change_no_token():
    """Names the student chose, comments, docstrings and spacing do not reach the fingerprints."""
    one = 'def f(x, w):\n    """Doc."""\n    out = np.dot(x, w) + 1.0  # forward\n    return out, (x, w)\n'
    two = "def f(inp,W):\n  # my version\n  result=np.dot(inp,W)+1\n\n  return result,(inp,W)"
    assert [t.text for t in fingerprints.normalised_tokens(one, {"np", "f"})] == [
        t.text for t in fingerprints.normalised_tokens(two, {"np", "f"})
    ]
    three = "def f(x, w):\n    out = np.matmul(x, w, axis=1)\n    return out"
    texts = [t.text for t in fingerprints.normalised_tokens(three, {"np", "f"})]
    assert "matmul" in texts and "axis" in texts and "x" not in texts  # library calls and keywords stay
    broken = "def f(x):\n    y = (x +\n  z = np.exp(x)"  # does not tokenize as a whole: read line by line
    assert "exp" in [t.text for t in fingerprints.normalised_tokens(broken, {"np", "f"})]


def test_copied_pair_ranks_first_and_honest_pairs_score_low(batch):
    report = write_similarity_report(batch, "hw")
    rows = _rows(batch)
    assert {rows[0]["student_a"], rows[0]["student_b"]} == {"ada", "bob"}
    assert float(rows[0]["score"]) >= COPIED_AT_LEAST
    assert set(rows[0]["cells"].replace(";", " ").split()) >= {"stats", "search"}
    honest = {frozenset((r["student_a"], r["student_b"])): float(r["score"]) for r in rows[1:]}
    assert all(score < HONEST_BELOW for score in honest.values()), honest
    assert not any("fay" in pair for pair in honest), "the release alone is never shared code"
    assert len(report.result.compared) == 6 and not report.result.skipped


def test_page_shows_the_pair_side_by_side_and_keeps_code_as_text(batch):
    html = write_similarity_report(batch, "hw").html_path.read_text()
    assert "never an automatic penalty" in html
    assert "ada ~ bob" in html and "<mark>" in html
    assert "<script" not in html.lower()
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_one_submission_is_not_enough(course):
    _submit(course, "ada", ADA)
    done = CliRunner().invoke(cli, ["similarity", "hw", "--course", str(course.root)])
    assert done.exit_code == 0, done.output
    assert "not enough submissions to compare (1 readable" in done.output
    assert _rows(course) == []
    assert "Not enough submissions to compare" in (course.reports_dir / "hw" / "similarity.html").read_text()


def test_unreadable_notebooks_are_skipped_with_the_reason_and_the_rest_compared(batch):
    broken = batch.submitted_dir / "zed" / "hw"
    broken.mkdir(parents=True)
    (broken / "hw.ipynb").write_text("{not json")
    (batch.submitted_dir / "yan" / "hw" / "hw.ipynb").mkdir(parents=True)
    (batch.submitted_dir / "xi").mkdir()
    (batch.submitted_dir / "xi" / "hw").symlink_to(batch.submitted_dir / "ada" / "hw")
    done = CliRunner().invoke(cli, ["similarity", "hw", "--course", str(batch.root)])
    assert done.exit_code == 1, done.output
    assert "skipped submitted/xi/hw: the submission folder is a symbolic link" in done.output
    assert "skipped submitted/zed/hw/hw.ipynb: hw.ipynb is not a notebook (invalid JSON" in done.output
    assert "skipped submitted/yan/hw/hw.ipynb: cannot be read: Is a directory" in done.output
    assert "6 submissions compared, 3 skipped" in done.output
    assert {_rows(batch)[0]["student_a"], _rows(batch)[0]["student_b"]} == {"ada", "bob"}
    assert "invalid JSON" in (batch.reports_dir / "hw" / "similarity.html").read_text()


def test_unknown_assignment_is_one_line_and_exit_2(course):
    run = "import sys\nfrom autograder.cli import main\nsys.argv = ['course', 'similarity', 'nope', '--course', "
    run += f"{str(course.root)!r}]\nmain()\n"
    done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown assignment 'nope'") and done.stderr.count("\n") == 1
