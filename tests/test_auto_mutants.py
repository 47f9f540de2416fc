"""Automatic mutants: which changes are made, where, and how they are spliced into the cell's text."""

from autograder.authoring.auto_mutants import cell_mutants

CELL = '''def softmax(s):
    """Row-wise softmax."""
    ### BEGIN SOLUTION
    shifted = s - s.max(axis=1, keepdims=True)  # é: columns are bytes in ast
    e = np.exp(shifted)
    print("debug", e.sum())
    return e / e.sum(axis=1, keepdims=True)
    ### END SOLUTION


def outside(x):
    return x + 1
'''


def test_each_operator_changes_one_place_inside_the_solution_region():
    found = {(m.line, m.before, m.after) for m in cell_mutants("softmax", CELL)}
    expected = {
        (4, "s - s.max(axis=1, keepdims=True)", "s + s.max(axis=1, keepdims=True)"),  # arithmetic swap
        (4, "s.max(axis=1, keepdims=True)", "s.min(axis=1, keepdims=True)"),  # max <-> min
        (4, "s.max(axis=1, keepdims=True)", "s.max(keepdims=True)"),  # axis dropped
        (4, "1", "2"),  # constant
        (4, "True", "False"),
        (5, "np.exp(shifted)", "np.log(shifted)"),
        (5, "e = np.exp(shifted)", "pass"),  # statement deleted
        (7, "e / e.sum(axis=1, keepdims=True)", "e * e.sum(axis=1, keepdims=True)"),
        (7, "e.sum(axis=1, keepdims=True)", "e.mean(axis=1, keepdims=True)"),  # sum <-> mean
    }
    assert expected <= found
    assert not [m for m in found if m[0] == 6], "a print() cannot be checked by a test: never mutated"
    assert not [m for m in found if m[0] > 8], "code outside the solution region is the course's, not mutated"


def test_the_mutant_is_the_cell_with_one_span_replaced():
    mutant = next(m for m in cell_mutants("softmax", CELL) if m.after == "s.min(axis=1, keepdims=True)")
    assert mutant.source == CELL.replace("s - s.max(axis=1", "s - s.min(axis=1")  # the comment with é survives
    assert mutant.id == "softmax: line 4: `s.max(axis=1, keepdims=True)` -> `s.min(axis=1, keepdims=True)`"


def test_transposes_swapped_arguments_and_symmetric_calls():
    cell = "### BEGIN SOLUTION\ndw = x.T @ dout\nout = np.maximum(0, x)\ny = np.dot(a, b)\n### END SOLUTION\n"
    found = {(m.before, m.after) for m in cell_mutants("c", cell)}
    assert ("x.T", "x") in found and ("x.T @ dout", "dout @ x.T") in found
    assert ("np.dot(a, b)", "np.dot(b, a)") in found
    assert not [pair for pair in found if pair[1] == "np.maximum(x, 0)"], "maximum is symmetric: no mutant"
    found = {m.after for m in cell_mutants("c", "### BEGIN SOLUTION\ny = k.transpose(-2, -1)\n### END SOLUTION\n")}
    assert "k.transpose(-1, -2)" not in found, "transpose(a, b) is transpose(b, a)"


def test_the_same_change_twice_on_one_line_gets_two_ids():
    cell = "### BEGIN SOLUTION\ny = f(1) * g(1)\n### END SOLUTION\n"
    ids = [m.id for m in cell_mutants("c", cell)]
    assert len(ids) == len(set(ids))
    assert "c: line 2: `1` -> `2` (#2)" in ids
