"""Benchmark: `course grade` against `nbgrader autograde` on the same batch, in the same run.

    .venv/bin/python bench/grade_vs_nbgrader.py [--assignment a1_backprop] [--copies 6] [--students N]
                                                [--repeat 3]

Builds a batch of a1 submissions (correct, blank, one per seeded bug, garbage: 41 with the defaults),
grades it with nbgrader autograde (serial, as nbgrader does) and with `course grade` using 1 and 2
workers, checks that both give the same scores to every honest submission, and prints wall times,
per-submission cost, the throughput ratio, the 1 -> 2 worker scaling and peak memory per worker.
Both graders run as the commands an instructor types (`nbgrader autograde`, `course grade`), each in a
new process with a new gradebook, so each pays its own start-up (for us: the forkserver, the warm
templates importing torch). nbgrader runs once (over two minutes); `course grade` runs --repeat times
per worker count, alternating, and the medians are compared, plus one run each with memory sampled
(not timed: reading PSS costs CPU). Scaling is given for the whole command and, from the job table's
timestamps, from the first recorded result to the last (the start-up left out), and next to the scaling
this machine's own ceiling, measured in the same run: how much faster two processes doing pure,
independent CPU work finish than one (on a virtual machine, two vCPUs rarely give a full 2x). Nothing
here is a test: the figures go to the README's performance section.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.authoring.demo import build_demo_course  # noqa: E402
from autograder.authoring.nbgrader_anchor import autograde, make_anchor_course  # noqa: E402
from autograder.batch.jobs import JobTable, table_path  # noqa: E402
from autograder.course import REPO_ROOT, Course  # noqa: E402


class PeakMemory:
    """Samples the memory of `command`'s grading processes: its workers, the warm-template sandbox (launched
    by the command itself for the first workers) and the students forked from it; the peak of their sum,
    per worker. The command and its forkserver (which only forks workers) are left out. Two measures:
    resident memory (RSS), which counts pages shared after a fork once per process (the sandbox's zygote and
    each template hold the same torch), and proportional memory (PSS), which splits shared pages among
    their sharers, sampled less often because reading it is slower."""

    def __init__(self, command: psutil.Process):
        self.command = command
        self.peak_per_worker = 0
        self.peak_pss_per_worker = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _per_worker(self, proportional: bool) -> int:
        try:
            tree = self.command.children(recursive=True)
            helpers = [p for p in self.command.children() if "multiprocessing" in " ".join(p.cmdline())]
            workers = [w for helper in helpers for w in helper.children()]  # the forkserver's children
            grading = [p for p in tree if p not in helpers]
            if proportional:
                total = sum(p.memory_full_info().pss for p in grading)
            else:
                total = sum(p.memory_info().rss for p in grading)
        except psutil.Error:
            return 0
        return total // len(workers) if workers else 0

    def _sample(self) -> None:
        rounds = 0
        while self.running:
            self.peak_per_worker = max(self.peak_per_worker, self._per_worker(proportional=False))
            if rounds % 5 == 2:
                self.peak_pss_per_worker = max(self.peak_pss_per_worker, self._per_worker(proportional=True))
            rounds += 1
            time.sleep(0.2)

    def stop(self) -> tuple[int, int]:
        self.running = False
        self.thread.join()
        return self.peak_per_worker, self.peak_pss_per_worker


@dataclass
class OurRun:
    seconds: float  # the whole command, as an instructor waits for it
    first_result: float  # from the command's start to the first result recorded in the job table
    last_result: float  # ... to the last one
    scores: dict  # student -> (score, had problems)
    memory: tuple[int, int] | None  # peak (RSS, PSS) per worker, when sampled


def time_ours(demo: Course, assignment: str, workers: int, sample_memory: bool = False) -> OurRun:
    """`course grade` as a command, from an empty gradebook and job table. With sample_memory, a thread
    samples its memory meanwhile (reading PSS costs CPU: such runs are not timed)."""
    for leftover in ("grading_jobs.db", "gradebook.db"):
        (demo.root / leftover).unlink(missing_ok=True)
    command = [str(Path(sys.executable).parent / "course"), "grade", assignment, "--workers", str(workers),
               "--course", str(demo.root)]  # fmt: skip
    started, clock = time.perf_counter(), time.time()  # the job table stamps results with time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = PeakMemory(psutil.Process(process.pid)) if sample_memory else None
    output, _ = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):  # 1: graded, some submissions had problems (the garbage ones)
        raise SystemExit(f"course grade failed ({process.returncode}):\n{output}")
    with contextlib.closing(sqlite3.connect(table_path(demo))) as db:
        query = "SELECT MIN(updated), MAX(updated) FROM jobs WHERE assignment = ?"
        first, last = db.execute(query, (assignment,)).fetchone()
    table = JobTable(table_path(demo))
    results = table.results(assignment)
    table.close()
    return OurRun(seconds, first - clock, last - clock, {r.student: (r.score, bool(r.problems)) for r in results},
                  memory.stop() if memory else None)  # fmt: skip


def describe(runs: list[OurRun], n: int) -> str:
    seconds = sorted(run.seconds for run in runs)
    middle = statistics.median(seconds)
    spread = f" of {len(runs)} ({seconds[0]:.1f} to {seconds[-1]:.1f})" if len(runs) > 1 else ""
    first = statistics.median(run.first_result for run in runs)
    rest = statistics.median(run.last_result - run.first_result for run in runs)
    return (f"{middle:7.1f} s{spread}  ({middle / n:.2f} s per submission); first result after {first:.1f} s, "
            f"the other {n - 1} in {rest:.1f} s")  # fmt: skip


SPIN = "n = 0\nfor i in range(12_000_000):\n    n += i % 7"  # pure CPU work, about 0.6 s here


def machine_ceiling(repeat: int) -> list[float]:
    """How much faster this machine does two independent CPU-bound jobs at once than one after the other:
    2 x (one job alone) / (two at once), `repeat` times. Nothing is shared between the two processes, so
    this is the scaling no parallel program can beat here."""
    def wall(copies: int) -> float:
        started = time.perf_counter()
        processes = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(copies)]
        for process in processes:
            process.wait()
        return time.perf_counter() - started

    return [2 * wall(1) / wall(2) for _ in range(repeat)]


def repeat_batch(demo: Course, size: int) -> None:
    """Copy the batch's submissions (student_r1, student_r2, ...) until it holds `size` of them; a last,
    partial round takes evenly spaced ones, to keep the mix."""
    base = sorted(p for p in demo.submitted_dir.iterdir())
    count, round_ = len(base), 1
    while count < size:
        wanted = size - count
        picked = base if wanted >= len(base) else base[:: len(base) // wanted][:wanted]
        for folder in picked:
            shutil.copytree(folder, folder.with_name(f"{folder.name}_r{round_}"))
        count += len(picked)
        round_ += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="a1_backprop")
    parser.add_argument("--copies", type=int, default=6, help="students submitting the solution / the blank release")
    parser.add_argument(
        "--students", type=int, default=0,
        help="grow the batch to this many submissions by repeating it (same mix; e.g. 300 for a large course)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of course grade per worker count (median)")
    args = parser.parse_args()

    course = Course.load(REPO_ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        demo = build_demo_course(course, args.assignment, Path(tmp) / "course", copies=args.copies)
        repeat_batch(demo, args.students)
        students = sorted(p.name for p in demo.submitted_dir.iterdir())
        print(f"batch: {len(students)} submissions of {args.assignment} on {os.cpu_count()} cores")

        anchor_root = make_anchor_course(demo, args.assignment, Path(tmp) / "anchor")
        folders = {s: demo.submitted_dir / s / args.assignment for s in students}
        started = time.perf_counter()
        theirs = autograde(anchor_root, args.assignment, folders, tolerate_failures=True)
        nbgrader_s = time.perf_counter() - started
        shutil.rmtree(anchor_root)

        ones, twos = [], []
        for _ in range(args.repeat):  # alternately, so that a slower spell of the machine hits both alike
            ones.append(time_ours(demo, args.assignment, workers=1))
            twos.append(time_ours(demo, args.assignment, workers=2))
        memory = [time_ours(demo, args.assignment, workers=w, sample_memory=True).memory for w in (1, 2)]
        ceilings = machine_ceiling(max(5, args.repeat))

    ours, n = ones[0].scores, len(students)
    identical = all(run.scores == ours for run in ones + twos)
    honest = [s for s in students if not ours[s][1] and s in theirs]
    disagree = [s for s in honest if abs(ours[s][0] - theirs[s].auto_score) > 1e-9]
    one_s = statistics.median(run.seconds for run in ones)
    two_s = statistics.median(run.seconds for run in twos)
    grading_one = statistics.median(run.last_result - run.first_result for run in ones)
    grading_two = statistics.median(run.last_result - run.first_result for run in twos)
    print(f"scores: {len(honest)} honest submissions compared, {len(disagree)} disagree {disagree or ''}")
    print(f"workers 1 vs 2 identical (every run): {identical}")
    print(f"nbgrader autograde : {nbgrader_s:7.1f} s  ({nbgrader_s / n:.2f} s per submission)")
    print(f"course grade -w 1  : {describe(ones, n)}")
    print(f"course grade -w 2  : {describe(twos, n)}")
    print(f"throughput vs nbgrader: {nbgrader_s / one_s:.1f}x with 1 worker, {nbgrader_s / two_s:.1f}x with 2")
    print(f"scaling 1 -> 2 workers: {one_s / two_s:.2f}x (whole command); "
          f"{grading_one / grading_two:.2f}x from the first result to the last (start-up left out)")  # fmt: skip
    ceiling = statistics.median(ceilings)
    print(f"this machine's ceiling: two independent CPU-bound processes run {ceiling:.2f}x as fast as one "
          f"(median of {len(ceilings)}: {min(ceilings):.2f} to {max(ceilings):.2f}); scaling relative to it: "
          f"{one_s / two_s / ceiling:.0%} (whole command), {grading_one / grading_two / ceiling:.0%} "
          f"(first result to last)")  # fmt: skip
    rss, pss = max(m[0] for m in memory), max(m[1] for m in memory)
    print(
        f"peak memory per worker (worker + its share of the sandbox): {rss / 2**20:.0f} MiB resident (RSS), "
        f"{pss / 2**20:.0f} MiB proportional (PSS: pages shared after a fork split among their sharers)"
    )
    if disagree or not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
