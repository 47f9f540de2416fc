"""The end-of-batch summary: how each question went, and which submissions had problems."""

from __future__ import annotations

from collections import Counter

from autograder.grading.results import SubmissionResult


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= 70 else line[:67] + "..."


def question_table(results: list[SubmissionResult]) -> str:
    """Per autograded cell: mean, min, how many lost points, the most common failure message."""
    by_question: dict[str, list] = {}
    for result in results:
        for cell in result.cells:
            if cell.score is not None:  # not manual, not waiting for a GPU runner (see gpu_waiting)
                by_question.setdefault(cell.grade_id, []).append(cell)
    if not by_question:
        return "no autograded questions"
    width = max(len(name) for name in by_question)
    lines = [f"{'question':<{width}}  {'points':>6}  {'mean':>6}  {'min':>5}  {'lost':>4}  most common failure"]
    for name, cells in by_question.items():
        scores = [cell.score for cell in cells]
        failures = Counter(_first_line(cell.message) for cell in cells if cell.score < cell.max_points)
        common = f"{failures.most_common(1)[0][0]} (x{failures.most_common(1)[0][1]})" if failures else ""
        lines.append(
            f"{name:<{width}}  {cells[0].max_points:6g}  {sum(scores) / len(scores):6.2f}  {min(scores):5g}  "
            f"{len([s for s, c in zip(scores, cells, strict=True) if s < c.max_points]):4d}  {common}"
        )
    return "\n".join(lines)


def problem_list(results: list[SubmissionResult]) -> str:
    lines = [f"  {r.student}: {'; '.join(r.problems)}" for r in sorted(results, key=lambda r: r.student) if r.problems]
    return ("submissions with problems:\n" + "\n".join(lines)) if lines else "no submission had problems"


def gpu_waiting(results: list[SubmissionResult]) -> str:
    """One line when GPU tests are still waiting for a CUDA runner, else ""."""
    waiting = [r for r in results if r.waiting_for_gpu]
    if not waiting:
        return ""
    tests = sum(len(r.waiting_for_gpu) for r in waiting)
    return f"{tests} GPU test(s) in {len(waiting)} submission(s) waiting for GPU runner (not counted as 0)"


def batch_summary(course, assignment: str, report, workers: int) -> str:
    """What `course grade` and `course demo` print after a batch: the question table, the problems,
    what waits for a GPU runner, the counts and the isolation (with a warning when it is reduced)."""
    if not report.results:
        return f"no submissions in {course.submitted_dir}/*/{assignment}/"
    lines = [question_table(report.results), problem_list(report.results)]
    if gpu_waiting(report.results):
        lines.append(gpu_waiting(report.results))
    isolation = sorted({result.isolation for result in report.results if result.isolation})
    lines.append(
        f"graded {report.graded} submission(s), {report.skipped} unchanged since the last run, "
        f"in {report.seconds:.1f} s with {workers} worker(s); isolation: {', '.join(isolation) or 'n/a'}"
    )
    if any(i.startswith("reduced") for i in isolation):
        lines.append("WARNING: isolation is reduced (see above): student code could read files on this machine.")
    return "\n".join(lines)
