"""Benchmark: one submission in CI, `course grade-one` (cold) against `otter run` on the exported zip.

    .venv/bin/python bench/grade_one_vs_otter.py [--assignment a1_backprop] [--repeat 3] [--jobs 2]

In one run: the wall time of the whole `course grade-one` command on the solution, each a fresh process
(cold: new Python, new sandbox; median of --repeat), the wall time of `otter run -a <zip> <notebook>` on
the same notebook with the zip from `course export-otter` (median of --repeat), then the agreement check:
every honest submission of the demo batch (solution, blank, one per seeded bug) graded by `course grade`
and by `otter run`, scores compared. Nothing here is a test: the figures go to the README.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.authoring.demo import build_demo_course  # noqa: E402
from autograder.batch.coordinator import grade_batch  # noqa: E402
from autograder.course import REPO_ROOT, Course  # noqa: E402
from autograder.export.otter_export import export_otter  # noqa: E402

BIN = Path(sys.executable).parent


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def otter_score(zip_path: Path, notebook: Path, out: Path) -> float:
    out.mkdir(parents=True)
    subprocess.run([str(BIN / "otter"), "run", "-a", str(zip_path), "-o", str(out), "--no-logo", str(notebook)],
                   capture_output=True, text=True)  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    return sum(test.get("score") or 0 for test in results["tests"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="a1_backprop")
    parser.add_argument("--repeat", type=int, default=3, help="cold runs of each command (median reported)")
    parser.add_argument("--jobs", type=int, default=2, help="otter runs in parallel for the agreement check")
    args = parser.parse_args()
    a = args.assignment

    course = Course.load(REPO_ROOT)
    notebook = course.solutions_dir / a / f"{a}.ipynb"
    with tempfile.TemporaryDirectory(prefix="bench-otter-") as tmp:
        tmp = Path(tmp)
        zip_path = export_otter(course, a, tmp / f"{a}-otter.zip")
        print(f"{a} on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; solution notebook {notebook}")

        ours, theirs = [], []
        for number in range(args.repeat):
            results = tmp / f"results-{number}.json"
            ours.append(wall([str(BIN / "course"), "grade-one", str(notebook), "--assignment", a,
                              "--results", str(results), "--course", str(REPO_ROOT)]))  # fmt: skip
            theirs.append(wall([str(BIN / "otter"), "run", "-a", str(zip_path), "-o", str(tmp),
                                "--no-logo", str(notebook)]))  # fmt: skip
        score = json.loads((tmp / "results-0.json").read_text())["score"]
        print(f"course grade-one (cold, whole command): median {statistics.median(ours):5.2f} s  "
              f"runs {', '.join(f'{s:.2f}' for s in ours)}  score {score:g}")  # fmt: skip
        print(f"otter run (exported zip)              : median {statistics.median(theirs):5.2f} s  "
              f"runs {', '.join(f'{s:.2f}' for s in theirs)}")  # fmt: skip
        print(f"otter run / grade-one: {statistics.median(theirs) / statistics.median(ours):.1f}x")

        demo = build_demo_course(course, a, tmp / "demo", garbage=False)
        report = grade_batch(demo, a, workers=args.jobs, force=True, show_progress=False)
        honest = {r.student: r.score for r in report.results if not r.problems}
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            runs = {
                s: pool.submit(otter_score, zip_path, demo.submitted_dir / s / a / f"{a}.ipynb", tmp / "otter" / s)
                for s in honest
            }
            otter = {s: run.result() for s, run in runs.items()}
    disagree = {s: (honest[s], otter[s]) for s in honest if abs(honest[s] - otter[s]) > 1e-9}
    print(f"demo batch: {len(report.results)} submissions, {len(honest)} honest; otter == course grade on "
          f"{len(honest) - len(disagree)}/{len(honest)}")  # fmt: skip
    if disagree:
        print(f"disagree (course grade, otter): {disagree}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
