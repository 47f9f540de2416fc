"""The GPU runner on a real CUDA machine, in one command:

    .venv/bin/python bench/gpu_runner.py [--students 4] [--concurrency 4]

Starts Debian's redis-server on a loopback port, one `course worker --queue cpu` and one
`course worker --queue gpu --concurrency N`, then grades a batch of solution submissions of the
assignments with GPU-marked exercises (every `gpu`-tagged test of the course, or of the assignments named)
with `--backend celery`: the notebooks see "cuda" and train at full size, the judge applies
the full thresholds. While it runs it samples `nvidia-smi` every 0.5 s. It prints, per GPU exercise, the
time of each GPU grading; how many gradings shared the GPU at once; the GPU's busy fraction; and the
proof that the student processes ran on CUDA (nvidia-smi lists their PIDs as compute processes, and they
are sandboxed student processes). It needs a CUDA GPU and stops at once without one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.authoring.release import solution_notebook  # noqa: E402
from autograder.batch.coordinator import grade_batch  # noqa: E402
from autograder.batch.jobs import JobTable, table_path  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.grading.grade import AssignmentSource  # noqa: E402
from autograder.grading.parts import cuda_device_count, gpu_test_ids  # noqa: E402
from tests.servers import RedisServer, Worker  # noqa: E402


def gpu_exercises(only: list[str]) -> dict[str, list[str]]:
    """{assignment: its gpu-tagged tests} for every assignment of the course that has any (or those in `only`)."""
    repo = Course.load(ROOT)
    found = {}
    for assignment in repo.assignments():
        tests = sorted(gpu_test_ids(AssignmentSource.load(repo, assignment).notebooks))
        if tests and (not only or assignment in only):
            found[assignment] = tests
    return found


def build_course(root: Path, students: int, exercises: dict[str, list[str]]) -> Course:
    """A course with `students` copies of each assignment's solution."""
    repo = Course.load(ROOT)
    root.mkdir(parents=True)
    shutil.copy(repo.root / "nbgrader_config.py", root / "nbgrader_config.py")
    for assignment in exercises:
        for folder in (repo.source_dir, repo.release_dir):
            shutil.copytree(folder / assignment, root / folder.relative_to(repo.root) / assignment)
    course = Course.load(root)
    for assignment in exercises:
        source = AssignmentSource.load(course, assignment)
        for number in range(students):
            folder = course.submitted_dir / f"student_{number:02d}" / assignment
            folder.mkdir(parents=True)
            for name, notebook in source.notebooks.items():
                nbformat.write(solution_notebook(notebook), folder / name)
    return course


class GpuSampler(threading.Thread):
    """nvidia-smi every 0.5 s: utilisation, and the compute processes (PID -> command line)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int, set[int]]] = []  # (time, utilisation %, compute pids)
        self.commands: dict[int, str] = {}
        self.stopped = threading.Event()

    def _query(self, *args: str) -> list[str]:
        done = subprocess.run(["nvidia-smi", *args, "--format=csv,noheader,nounits"], capture_output=True, text=True)
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    def run(self) -> None:
        while not self.stopped.is_set():
            utilisation = max((int(v) for v in self._query("--query-gpu=utilization.gpu") if v.isdigit()), default=0)
            pids = set()
            for line in self._query("--query-compute-apps=pid"):
                if line.isdigit():
                    pid = int(line)
                    pids.add(pid)
                    if pid not in self.commands:
                        try:
                            command = Path(f"/proc/{pid}/cmdline").read_bytes()
                            self.commands[pid] = command.replace(b"\0", b" ").decode(errors="replace")
                        except OSError:
                            self.commands[pid] = "?"
            self.samples.append((time.monotonic(), utilisation, pids))
            self.stopped.wait(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=4, help="solution submissions per assignment")
    parser.add_argument("--concurrency", type=int, default=4, help="gradings sharing the GPU worker")
    parser.add_argument("assignments", nargs="*", help="only these assignments (default: all with GPU tests)")
    args = parser.parse_args()
    exercises = gpu_exercises(args.assignments)
    print("GPU tests:", exercises)
    if shutil.which("nvidia-smi") is None or cuda_device_count() == 0:
        sys.exit("no CUDA GPU here (torch.cuda.is_available() is False): run this on a CUDA machine")
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is missing: run scripts/setup.sh as root (or apt-get install redis-server)")

    with tempfile.TemporaryDirectory(prefix="gpu-runner-") as tmp:
        tmp = Path(tmp)
        course = build_course(tmp / "course", args.students, exercises)
        redis = RedisServer(tmp / "redis").start()
        workers = [
            Worker("cpu", redis.url, tmp / "cpu.log", concurrency=2),
            Worker("gpu", redis.url, tmp / "gpu.log", concurrency=args.concurrency),
        ]
        sampler = GpuSampler()
        try:
            for worker in workers:
                worker.wait_ready(timeout=120)
            sampler.start()
            started = time.monotonic()
            reports = {a: grade_batch(course, a, backend="celery", broker_url=redis.url, show_progress=True)
                       for a in exercises}  # fmt: skip
            wall = time.monotonic() - started
        finally:
            sampler.stopped.set()
            for worker in workers:
                worker.stop()
            redis.stop()
        report(course, exercises, reports, sampler, wall)


def report(course: Course, exercises: dict[str, list[str]], reports: dict, sampler: GpuSampler, wall: float) -> None:
    table = JobTable(table_path(course))
    print(f"\nbatch: {sum(len(r.results) for r in reports.values())} submissions in {wall:.1f} s")
    for assignment, tests in exercises.items():
        rows = table.db.execute(
            "SELECT student, result FROM jobs WHERE assignment = ? AND part = 'gpu' ORDER BY student", (assignment,)
        ).fetchall()
        seconds = [json.loads(result)["seconds"] for _, result in rows]
        scores = {test: [cell.score for r in reports[assignment].results for cell in r.cells if cell.grade_id == test]
                  for test in tests}  # fmt: skip
        print(f"  {assignment}: GPU gradings {len(seconds)}, time each "
              f"mean {sum(seconds) / max(len(seconds), 1):.1f} s, max {max(seconds, default=0):.1f} s; "
              f"scores {scores}")  # fmt: skip
        for result in reports[assignment].results:
            for cell in result.cells:
                if cell.grade_id in tests and cell.score != cell.max_points:
                    print(f"    {result.student} lost points on {cell.grade_id}: {(cell.message or '')[-600:]}")
            for problem in result.problems:
                print(f"    {result.student}: problem: {problem[:300]}")
        for path in sorted(course.autograded_dir.glob(f"*/{assignment}/*.ipynb"))[:1]:  # what the cells raised
            for cell in nbformat.read(path, as_version=4).cells:
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                for output in errors:
                    where = cell.metadata.get("nbgrader", {}).get("grade_id")
                    error = f"{output.get('ename')}: {output.get('evalue')}"
                    print(f"    {path.parent.parent.name} cell {where}: {error[:500]}")
    table.close()
    samples = sampler.samples
    if not samples:
        print("no nvidia-smi samples")
        return
    busy = sum(1 for _, utilisation, _ in samples if utilisation > 0) / len(samples)
    mean = sum(utilisation for _, utilisation, _ in samples) / len(samples)
    at_once = max(len(pids) for _, _, pids in samples)
    print(f"  GPU busy {busy:.0%} of {len(samples)} samples (mean utilisation {mean:.0f}%); "
          f"at most {at_once} processes on the GPU at once")  # fmt: skip
    students = {pid: cmd for pid, cmd in sampler.commands.items() if "/sandbox/runner" in cmd or "bwrap" in cmd}
    print(f"  CUDA processes seen: {len(sampler.commands)}, of which sandboxed student processes: {len(students)}")
    for pid, command in list(students.items())[:3]:
        print(f"    pid {pid}: {command[:150]}")
    if not students:
        print("  WARNING: no student process was seen on the GPU")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
