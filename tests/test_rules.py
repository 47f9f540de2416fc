"""Rules for "by hand" exercises: declared on a source cell, checked judge-side on the submitted source."""

import nbformat
import pytest

from autograder.authoring.release import release
from autograder.authoring.validate import validate
from autograder.batch.coordinator import grade_batch
from autograder.course import CourseError
from course_utils import rules
from course_utils.selfcheck import check
from tests.conftest import FIXTURE_COURSE
from tests.helpers import MEAN_OK, NORMALISE_OK, submit

NUMPY_ONLY = rules.Rule(("torch",), "written with numpy")


def test_every_way_of_reaching_a_forbidden_module_is_found():
    code = (
        "import torch.nn.functional as F\n"
        "def f(x):\n"
        "    return F.relu(x)\n"
        "from torch import autograd\n"
        "g = __import__('torch')\n"
        "import importlib\n"
        "h = importlib.import_module('torch.nn')\n"
        "k = torch.autograd.grad(y, x)\n"
        "ok = np.maximum(0, x)\n"
    )
    found = rules.violations(code, NUMPY_ONLY, {"torch": "torch", "np": "numpy"})
    assert [(v.line, v.used, v.function) for v in found] == [
        (1, "torch.nn.functional", None),
        (3, "torch.nn.functional.relu", "f"),
        (4, "torch.autograd", None),
        (5, "torch", None),
        (7, "torch.nn", None),
        (8, "torch.autograd.grad", None),
    ]


def test_one_name_can_be_forbidden_and_the_rest_of_the_module_allowed():
    rule = rules.Rule(("torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention"), "by hand")
    code = (
        "w = F.softmax(q @ k.T, dim=-1)\ny = F.scaled_dot_product_attention(q, k, v)\n"
        "m = nn.MultiheadAttention(4, 2)\n"
    )
    found = rules.violations(code, rule, {"F": "torch.nn.functional", "nn": "torch.nn"})
    assert [v.line for v in found] == [2, 3]


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"course": {"forbid": ["torhc"]}}, "torhc, which is not a module"),
        ({"course": {"forbid": ["torch.nn.NoSuchLayer"]}}, "torch.nn.NoSuchLayer, which is not"),
        ({"course": {"forbid": "torch"}}, "must be a non-empty list"),
    ],
)
def test_a_declaration_that_cannot_be_right_is_refused(metadata, message):
    with pytest.raises(rules.RuleError, match=message):
        rules.rule_of(metadata)


def _declare(course, cell: str, forbid: list[str], must_be: str) -> None:
    path = course.source_dir / "ps1" / "ps1.ipynb"
    nb = nbformat.read(path, as_version=4)
    for source_cell in nb.cells:
        if source_cell.metadata.get("nbgrader", {}).get("grade_id") == cell:
            source_cell.metadata["course"] = {"forbid": forbid, "must_be": must_be}
    nbformat.write(nb, path)


def test_a_misspelt_rule_key_fails_release_with_file_and_cell(fixture_course):
    """A typo must not switch a rule off silently: the course metadata schema refuses unknown keys."""
    path = fixture_course.source_dir / "ps1" / "ps1.ipynb"
    nb = nbformat.read(path, as_version=4)
    squares = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "squares")
    squares.metadata["course"] = {"forbids": ["math"]}
    nbformat.write(nb, path)
    with pytest.raises(CourseError, match=r"ps1.ipynb: cell \d+: course metadata: .*'forbids' was unexpected"):
        release(fixture_course, "ps1")
    assert rules.rule_of(squares.metadata, check_names=False) is None  # grading: no rule declared, none applied


def test_a_rule_naming_an_unknown_module_fails_validate_with_file_and_cell(fixture_course):
    _declare(fixture_course, "squares", ["nosuchmodule"], "by hand")
    release(fixture_course, "ps1")
    with pytest.raises(CourseError, match=r"ps1/ps1.ipynb: cell 'squares': course.forbid names nosuchmodule"):
        validate(fixture_course, "ps1")


def test_breaking_a_rule_fails_the_tests_of_that_function_only(fixture_course):
    _declare(fixture_course, "squares", ["math"], "written with plain arithmetic")
    release(fixture_course, "ps1")
    lazy = "def squares(n):\n    return [int(math.pow(i, 2)) for i in range(1, n + 1)]"
    own = "def squares(n):\n    return [i * i for i in range(1, n + 1)]"
    added = "import math as m\n\ndef squares(n):\n    return [int(m.pow(i, 2)) for i in range(1, n + 1)]"
    for student, code, extra in [("lazy", lazy, []), ("own", own, []), ("added_cell", own, [added])]:
        submit(fixture_course, "ps1", student, {"squares": code, "mean": MEAN_OK, "normalise": NORMALISE_OK},
               extra_cells=extra)  # fmt: skip
    results = {r.student: r for r in grade_batch(fixture_course, "ps1", workers=1, show_progress=False).results}
    verdicts = {s: {c.grade_id: (c.score, c.message) for c in r.cells} for s, r in results.items()}
    assert verdicts["lazy"]["test_squares"] == (
        0.0, "squares must be written with plain arithmetic: it uses math.pow at line 2"
    )
    assert verdicts["lazy"]["test_mean_partial"][0] == 4.0  # other functions keep their points
    assert verdicts["own"]["test_squares"] == (2.0, "")
    # a cell added after the tests redefines squares; it runs after test_squares, so only a later test would see it
    assert verdicts["added_cell"]["test_squares"] == (2.0, "")


def test_the_self_check_shows_the_rule_too(fixture_course, tmp_path):
    _declare(fixture_course, "squares", ["math"], "written with plain arithmetic")
    release(fixture_course, "ps1")
    nb = nbformat.read(fixture_course.release_dir / "ps1" / "ps1.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "squares":
            cell.source = "def squares(n):\n    return [int(math.pow(i, 2)) for i in range(1, n + 1)]"
    path = tmp_path / "ps1.ipynb"
    nbformat.write(nb, path)
    namespace = {"math": __import__("math")}
    exec(nb.cells[1].source + "\n" + nb.cells[2].source, namespace)
    result = check(str(path), "test_squares", namespace)
    assert not result.ok
    assert "squares must be written with plain arithmetic: it uses math.pow at line 2" in str(result)
    assert "2 of 3 public checks passed" in str(result)


def test_a_test_depends_on_the_functions_its_functions_call():
    rule = rules.Rule(("torch",), "written with numpy")
    conv = "def conv_backward(d, c):\n    return torch.autograd.grad(d, c)\n"
    net = "def net_loss(x):\n    return helper(x)\n\ndef helper(x):\n    return conv_backward(x, x)\n"
    governed = [rules.GovernedCell("conv", rule, frozenset({"conv_backward"}))]
    cells_before = [("conv", conv), ("net", net)]
    assert rules.broken_rules("loss = net_loss(1)", governed, cells_before, ["import torch"]) == [
        "conv_backward must be written with numpy: it uses torch.autograd.grad at line 2"
    ]
    assert rules.broken_rules("y = 2 * 3", governed, cells_before, ["import torch"]) == []


NO_GRAPH = {"function": "evaluate", "any_of": ["torch.no_grad", "torch.inference_mode"],
            "why": "run the model without recording a graph"}  # fmt: skip


@pytest.mark.parametrize(
    "code, met",
    [
        ("def evaluate(m, x):\n    with torch.no_grad():\n        return m(x)\n", True),
        ("@torch.no_grad()\ndef evaluate(m, x):\n    return m(x)\n", True),
        ("from torch import inference_mode\ndef evaluate(m, x):\n    with inference_mode():\n        return m(x)\n",
         True),
        ("def evaluate(m, x):\n    return _predict(m, x)\n\ndef _predict(m, x):\n    with torch.no_grad():\n"
         "        return m(x)\n", True),
        ("def evaluate(m, x):\n    return m(x)\n", False),
        ("def evaluate(m, x):\n    torch.set_grad_enabled(True)\n    return m(x)\n", False),
        ("def evaluate(m, x):\n    return m(x)\n\ndef unused():\n    return torch.no_grad()\n", False),
    ],
)
def test_a_required_name_must_be_used_by_the_function_or_what_it_calls(code, met):
    rule = rules.rule_of({"course": {"require": [NO_GRAPH]}})
    governed = [rules.GovernedCell("fit", rule, frozenset(rules.defined_names(code)))]
    found = rules.broken_rules("acc = evaluate(model, X)", governed, [("fit", code)], ["import torch"])
    expected = [] if met else [
        "evaluate must run the model without recording a graph: it uses none of torch.no_grad, torch.inference_mode"
    ]
    assert found == expected
    assert rules.broken_rules("y = fit_other(1)", governed, [("fit", code)], ["import torch"]) == []


@pytest.mark.parametrize(
    "require, message",
    [
        ([{"function": "evaluate", "any_of": ["torch.no_grad"]}], "exactly the keys function, any_of, why"),
        ([{"function": "evaluate", "any_of": [], "why": "x"}], "any_of must be a non-empty list"),
        ([{"function": "evaluate", "any_of": ["torch.no_such_thing"], "why": "x"}], "course.require names torch.no"),
        ("torch.no_grad", "course.require must be a non-empty list"),
    ],
)
def test_a_requirement_that_cannot_be_right_is_refused(require, message):
    with pytest.raises(rules.RuleError, match=message):
        rules.rule_of({"course": {"require": require}})


def test_every_committed_notebook_has_well_formed_course_metadata(repo_course):
    folders = [repo_course.source_dir, repo_course.release_dir, repo_course.solutions_dir, FIXTURE_COURSE / "source"]
    checked = 0
    for path in sorted(p for folder in folders for p in folder.glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if "course" in cell.metadata:
                rules.check_course_metadata(cell.metadata["course"])
                checked += 1
    assert checked > 40  # the rules in source/ and the self-check cells in release/


SETUP_WITH_HELPERS = (
    "import torch\n"
    "def torch_backward(d, c):\n    return torch.autograd.grad(d, c)\n"
    "def load_data():\n    return torch.zeros(3).numpy()\n"
    "data = load_data()\n"
    "tb = torch.autograd.grad\n"
)
CONV = rules.GovernedCell("conv", NUMPY_ONLY, frozenset({"conv_backward"}))


@pytest.mark.parametrize(
    "student_cells, message",
    [
        ([("conv", "def conv_backward(d, c):\n    return torch_backward(d, c)\n")],
         "conv_backward must be written with numpy: it calls torch_backward, which uses torch.autograd.grad"),
        ([("conv", "conv_backward = torch_backward\n")], "it calls torch_backward, which uses torch.autograd.grad"),
        ([("conv", "def conv_backward(d, c):\n    return tb(d, c)\n")], "it calls tb, which uses torch.autograd.grad"),
        ([("conv", "def conv_backward(d, c):\n    return _mine(d, c)\n"),
          (None, "def _mine(d, c):\n    return _deeper(d, c)\n"
                 "def _deeper(d, c):\n    return torch.autograd.grad(d, c)\n")],
         "conv_backward must be written with numpy: it calls _mine, which calls _deeper, which uses torch.autograd"),
        ([("conv", "def conv_backward(d, c):\n    return _mine(d, c)\n"),
          ("relu", "def _mine(d, c):\n    return torch_backward(d, c)\n")],
         "it calls _mine, which calls torch_backward, which uses torch.autograd.grad"),
    ],
)  # fmt: skip
def test_a_helper_that_breaks_the_rule_breaks_the_function_that_calls_it(student_cells, message):
    """A provided helper that uses torch (a read-only cell's reference implementation) or the student's own
    helper in another cell is a way around a numpy-only rule: the tests of the calling function fail."""
    broken = rules.broken_rules("conv_backward(1, 2)", [CONV], student_cells, [SETUP_WITH_HELPERS])
    assert len(broken) == 1 and message in broken[0]


@pytest.mark.parametrize(
    "code",
    [
        "def conv_backward(d, c):\n    return data * d\n",  # data the notebook loaded, not a call to torch
        "def conv_backward(d, torch_backward):\n    return torch_backward * d\n",  # a parameter of that name
        "def conv_backward(d, c):\n    tb = d * c\n    return tb\n",  # a local of that name
        "def torch_backward(d, c):\n    return d * c\ndef conv_backward(d, c):\n    return torch_backward(d, c)\n",
    ],
)
def test_names_that_only_look_like_a_forbidden_helper_break_nothing(code):
    assert rules.broken_rules("conv_backward(1, 2)", [CONV], [("conv", code)], [SETUP_WITH_HELPERS]) == []


def test_a_broken_rule_fails_only_the_tests_that_reach_the_cell():
    """A rule broken at the top level of one cell (a global `start`) does not fail a test whose function has
    a local `start`, nor a test that binds its own `rng`, as both once did (a8 and a9 found it)."""
    svd = "start = torch.linalg.svd(x)\ndef embed(x):\n    return x\n"
    other = "def train(data):\n    for start in range(3):\n        data = data + start\n    return data\n"
    governed = [rules.GovernedCell("svd", NUMPY_ONLY, frozenset(rules.defined_names(svd)))]
    cells = [("svd", svd), ("train", other)]
    assert rules.broken_rules("train(1)", governed, cells, ["import torch"]) == []
    assert rules.broken_rules("start = 0\nrng = start + 1\n", governed, cells, ["import torch"]) == []
    assert rules.broken_rules("embed(start)", governed, cells, ["import torch"]) != []
