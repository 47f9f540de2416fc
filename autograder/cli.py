"""The `course` command: one verb per arrow of the course's data flow (see README)."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import NoReturn

import click

from autograder.course import Course, CourseError

course_option = click.option(
    "--course",
    "course_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The course directory (holds nbgrader_config.py, source/, release/, submitted/).",
)


def _assignments(course: Course, assignments: tuple[str, ...], all_: bool) -> list[str]:
    if all_:
        return course.assignments()
    if not assignments:
        raise click.UsageError("name an assignment or pass --all")
    return list(assignments)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Release, grade and validate the deep-learning course.

    Every verb works on an nbgrader course directory (default: the current one).
    """


@cli.command("release")
@click.argument("assignments", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Release every assignment in source/.")
@click.option("--no-execute", is_flag=True, help="Write release/ only; leave solutions/ as they are.")
@click.option("--force-execute", is_flag=True, help="Execute the solutions even when they are up to date.")
@course_option
def release_command(
    assignments: tuple[str, ...], all_: bool, no_execute: bool, force_execute: bool, course_root: Path
) -> None:
    """Build release/<a>/ (student notebooks) and solutions/<a>/ (executed solutions) from source/<a>/.

    Solutions and hidden tests are stripped by nbgrader's own generate_assignment; files named in
    CourseDirectory.ignore (e.g. mutants.toml) never reach students. Nothing is replaced unless the
    whole assignment builds. Solutions are executed again only when source/<a>/, course_utils or the
    configuration changed since they were (or with --force-execute).
    """
    from autograder.authoring.release import release

    course = Course.load(course_root)
    for assignment in _assignments(course, assignments, all_):
        report = release(course, assignment, execute_solutions=not no_execute, force_execute=force_execute)
        if no_execute:
            solutions = ""
        elif len(report.solutions_up_to_date) == len(report.notebooks):
            solutions = "; solutions up to date (not executed again)"
        else:
            solutions = f"; solutions executed in {report.solution_seconds:.1f} s"
        click.echo(
            f"{assignment}: released {len(report.notebooks)} notebook(s) in {report.release_seconds:.2f} s{solutions}"
        )


@cli.command("validate")
@click.argument("assignments", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Validate every assignment in source/.")
@click.option("--with-nbgrader", is_flag=True, help="Also grade solution and release with nbgrader autograde.")
@click.option("--quick", is_flag=True, help="Grade each mutant only up to its first lost point (faster).")
@click.option("--seeds", type=click.IntRange(min=0), default=0,
              help="Also grade the solution re-seeded ({seed} = 1..N-1 in mutants.toml's [[seed]] entries).")
@click.option("--auto-mutants", "auto_mutants", is_flag=False, flag_value="all", default=None, metavar="[N]",
              help="Grade automatic mutants of the solution regions (all, or a sample of N) and report the kill rate.")
@click.option("--sample-seed", type=int, default=0, show_default=True, help="Which sample --auto-mutants N takes.")
@click.option("--workers", type=int, default=os.cpu_count() or 1, show_default="number of cores")
@course_option
def validate_command(
    assignments: tuple[str, ...], all_: bool, with_nbgrader: bool, quick: bool, seeds: int,
    auto_mutants: str | None, sample_seed: int, workers: int, course_root: Path,
) -> None:  # fmt: skip
    """Check that an assignment is gradable and its tests catch bugs.

    Grades (with `course grade`'s engine) the solution, which must earn every autograded point, the
    untouched release, which must earn none, and every seeded bug, mistake and cheat in
    source/<a>/mutants.toml, each of which must lose points. Prints a table; exits 1 on any miss.
    """
    from autograder.authoring.validate import validate

    if auto_mutants not in (None, "all") and not auto_mutants.isdigit():
        raise click.BadParameter(f"{auto_mutants!r} is not a number", param_hint="--auto-mutants")
    sample = int(auto_mutants) if auto_mutants not in (None, "all") else None
    course = Course.load(course_root)
    failed = False
    for assignment in _assignments(course, assignments, all_):
        report = validate(course, assignment, with_nbgrader=with_nbgrader, workers=workers, quick=quick,
                          seeds=seeds, auto=auto_mutants is not None, auto_mutants_sample=sample,
                          sample_seed=sample_seed)  # fmt: skip
        click.echo(report.table())
        failed = failed or not report.ok
    if failed:
        raise SystemExit(1)


@cli.command("grade")
@click.argument("assignment")
@click.option("--student", "students", multiple=True, help="Grade only this student (repeatable).")
@click.option(
    "--workers",
    type=int,
    default=os.cpu_count() or 1,
    show_default="number of cores",
    help="Grading workers running in parallel.",
)
@click.option("--force", is_flag=True, help="Grade again even submissions that have not changed.")
@click.option(
    "--backend",
    type=click.Choice(["local", "celery"]),
    default="local",
    show_default=True,
    help="local: worker processes here. celery: tasks on Redis queues cpu/gpu for `course worker`s.",
)
@click.option(
    "--broker",
    envvar="COURSE_BROKER_URL",
    default="redis://127.0.0.1:6379/0",
    show_default=True,
    help="Redis URL of the Celery backend (env COURSE_BROKER_URL).",
)
@click.option(
    "--gpu-tests",
    type=click.Choice(["here", "wait"]),
    default="here",
    show_default=True,
    help="Local backend: grade GPU-tagged tests here (CPU smoke budgets without CUDA), or leave them "
    "'waiting for GPU runner' for a Celery gpu worker.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Celery backend: return once the CPU parts are graded; GPU parts stay queued (run again to collect).",
)
@course_option
def grade_command(
    assignment: str,
    students: tuple[str, ...],
    workers: int,
    force: bool,
    backend: str,
    broker: str,
    gpu_tests: str,
    no_wait: bool,
    course_root: Path,
) -> None:
    """Grade submitted/<student>/<ASSIGNMENT>/ for every student, tamper-proof, in parallel.

    Each notebook runs in a sandboxed student process; the source's tests run in a separate trusted
    judge. Writes the gradebook (nbgrader schema), autograded/<student>/<ASSIGNMENT>/,
    reports/<ASSIGNMENT>/grades.csv and reports/<ASSIGNMENT>/results/<student>.json. Resumable: run it
    again after an interruption and it grades only what is left; unchanged submissions are not re-run.
    With --backend celery, CPU parts go to queue cpu and GPU-tagged tests to queue gpu (CUDA runners);
    this command waits for both and merges them.

    Exit code: 0 all graded cleanly; 1 graded, but some submissions had problems (each recorded with its
    reason); 2 the grader itself failed; 130 interrupted (run again to finish).
    """
    if backend == "local":
        from autograder.batch import judge_server

        judge_server.start(course_root.resolve(), assignment)  # first: its imports (torch...) overlap ours
    from autograder.batch.coordinator import grade_batch

    course = Course.load(course_root)
    try:
        report = grade_batch(
            course, assignment, workers, force, list(students) or None,
            backend=backend, gpu_tests=gpu_tests, broker_url=broker, wait_for_gpu=not no_wait,
        )  # fmt: skip
    except KeyboardInterrupt:
        click.echo("interrupted: finished submissions are recorded; run the same command again to grade the rest")
        raise SystemExit(130) from None
    _print_batch(course, assignment, report, workers)
    if report.has_problems:
        raise SystemExit(1)


def _print_batch(course: Course, assignment: str, report, workers: int) -> None:
    from autograder.records.summary import gpu_waiting, problem_list, question_table

    if not report.results:
        click.echo(f"no submissions in {course.submitted_dir}/*/{assignment}/")
        return
    click.echo(question_table(report.results))
    click.echo(problem_list(report.results))
    if gpu_waiting(report.results):
        click.echo(gpu_waiting(report.results))
    isolation = sorted({result.isolation for result in report.results if result.isolation})
    click.echo(
        f"graded {report.graded} submission(s), {report.skipped} unchanged since the last run, "
        f"in {report.seconds:.1f} s with {workers} worker(s); isolation: {', '.join(isolation) or 'n/a'}"
    )
    if any(i.startswith("reduced") for i in isolation):
        click.echo("WARNING: isolation is reduced (see above): student code could read files on this machine.")


def _import_in_background(modules: list[str]):
    """Import the notebooks' heavy modules (torch...) for the judge while the sandbox starts and runs the
    student's first cells, so that the two costs overlap instead of adding up (grade-one's cold time).
    `modules` comes from AssignmentSource.judge_imports (torch brings torch._dynamo along)."""
    import importlib
    import threading

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 -- the judge imports it again and reports the error there
                pass

    thread = threading.Thread(target=run, name="judge-imports", daemon=True)
    thread.start()
    return thread


@cli.command("worker")
@click.option("--queue", type=click.Choice(["cpu", "gpu"]), required=True, help="Which jobs this worker takes.")
@click.option("--concurrency", type=int, default=os.cpu_count() or 1, show_default="number of cores")
@click.option(
    "--broker",
    envvar="COURSE_BROKER_URL",
    default="redis://127.0.0.1:6379/0",
    show_default=True,
    help="Redis URL (env COURSE_BROKER_URL).",
)
def worker_command(queue: str, concurrency: int, broker: str) -> None:
    """Run a Celery grading worker for `course grade --backend celery`.

    --queue gpu is a CUDA runner: it starts only where torch.cuda.is_available() (checked here) and gives
    each of its processes a GPU through CUDA_VISIBLE_DEVICES; several gradings may share one GPU. The
    worker reads courses at the paths the coordinator sends (same machine or a shared filesystem).
    """
    from autograder.batch.celery_app import run_worker
    from autograder.batch.pool import NoCuda

    try:
        run_worker(queue, concurrency, broker)
    except NoCuda as error:
        click.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None


@cli.command("grade-one")
@click.argument("submission", type=click.Path(exists=True, path_type=Path))
@click.option("--assignment", required=True, help="Which assignment the submission is for.")
@click.option(
    "--results",
    "results_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="results.json",
    show_default=True,
    help="Where to write Gradescope's results.json.",
)
@click.option(
    "--part",
    type=click.Choice(["all", "cpu", "gpu"]),
    default="all",
    show_default=True,
    help="cpu: GPU-tagged tests stay pending (a CPU runner); gpu: only those, on a CUDA runner.",
)
@course_option
def grade_one_command(submission: Path, assignment: str, results_path: Path, part: str, course_root: Path) -> None:
    """Grade one submission (a notebook or a folder) for CI, the same way `course grade` does.

    Writes Gradescope's results.json. Exits 0 when the submission was graded, whatever its score (a
    broken notebook is graded too: 0 points with the reason); 2 only when the grader itself failed.
    """
    import json
    import shutil
    import tempfile

    from autograder.batch.pool import GPU_MEMORY_BYTES, cuda_device_count, limit_threads
    from autograder.grading.grade import AssignmentSource, Timeouts, grade_submission
    from autograder.records.reports import results_json
    from autograder.sandbox.confine import Limits

    course = Course.load(course_root)
    source = AssignmentSource.load(course, assignment)
    cuda = cuda_device_count() if part != "cpu" else 0
    if part == "gpu" and cuda == 0:
        raise CourseError("--part gpu needs a CUDA GPU, and torch sees none on this machine")
    limits = Limits(gpu=True, memory_bytes=GPU_MEMORY_BYTES) if cuda else Limits()
    try:
        limit_threads()  # the judge's BLAS and torch threads otherwise spin against each other: 5x slower tests
        preload = _import_in_background(source.judge_imports())
        with tempfile.TemporaryDirectory(prefix="grade-one-") as tmp:
            folder = submission
            if submission.is_file():
                folder = Path(tmp) / "submission"
                folder.mkdir()
                name = submission.name if submission.name in source.notebooks else next(iter(source.notebooks))
                shutil.copy(submission, folder / name)
            timeouts = Timeouts.for_assignment(course, source, gpu=limits.gpu)
            result = grade_submission(source, folder, "ci", timeouts, limits, part=part)
        preload.join()
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results_json(result), indent=1) + "\n")
    except Exception as error:  # a bug or a broken machine, never the submission: grading records those
        click.echo(f"error: the grader failed: {type(error).__name__}: {error}", err=True)
        raise SystemExit(2) from None
    for problem in result.problems:
        click.echo(f"problem: {problem}")
    click.echo(
        f"{assignment}: {result.score:g}/{result.auto_max:g} autograded points in {result.seconds:.1f} s "
        f"(isolation: {result.isolation or 'n/a'}); {results_path}"
    )


@cli.command("export-otter")
@click.argument("assignment")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the zip.  [default: dist/<ASSIGNMENT>-otter.zip in the course]",
)
@course_option
def export_otter_command(assignment: str, out: Path | None, course_root: Path) -> None:
    """Write an otter-grader autograder zip (Gradescope, `otter run -a ZIP NOTEBOOK`) for ASSIGNMENT.

    One OK-format test per source test cell, same points, all or nothing; hidden tests marked hidden.
    Otter runs these tests inside the student's kernel, so a submission can change its own score
    (patch np.allclose, the helpers, otter itself): only `course grade` is tamper-proof.
    """
    from autograder.export.otter_export import default_path, export_otter

    course = Course.load(course_root)
    path = export_otter(course, assignment, out or default_path(course, assignment))
    click.echo(f"{assignment}: otter autograder in {path} (otter runs tests inside the student's kernel: tamperable)")


@cli.command("ci-template")
@click.option("--assignment", required=True, help="The assignment the student's repository holds.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=".github/workflows/grade.yml",
    show_default=True,
    help="Where to write the workflow.",
)
@click.option(
    "--gpu/--no-gpu",
    "gpu_job",
    default=None,
    help="Add the [self-hosted, gpu] job.  [default: when the assignment has GPU-tagged tests]",
)
@course_option
def ci_template_command(assignment: str, out: Path, gpu_job: bool | None, course_root: Path) -> None:
    """Write a GitHub Actions workflow for a student's repository that grades it with `course grade-one`.

    A CPU job on ubuntu-24.04 (and a [self-hosted, gpu] job for GPU-tagged tests) fetches the course,
    hidden tests included, from the private repository named by the COURSE_REPOSITORY variable with the
    COURSE_TOKEN secret, never from the student's repository, and uploads results.json.
    """
    from autograder.export.ci_template import write_workflow

    path = write_workflow(Course.load(course_root), assignment, out, gpu_job)
    click.echo(f"{assignment}: workflow in {path}; set COURSE_REPOSITORY (variable) and COURSE_TOKEN (secret)")


def _graded_results(course: Course, assignment: str) -> list:
    from autograder.batch.jobs import JobTable, table_path

    if not table_path(course).exists():
        raise CourseError(f"{table_path(course)}: not found; run `course grade {assignment}` first")
    table = JobTable(table_path(course))
    try:
        results = table.results(assignment)
    finally:
        table.close()
    if not results:
        raise CourseError(f"no graded submissions of {assignment}; run `course grade {assignment}` first")
    return results


@cli.command("feedback")
@click.argument("assignment")
@click.option("--published", is_flag=True, help="Grades are published: show hidden tests' failure messages too.")
@course_option
def feedback_command(assignment: str, published: bool, course_root: Path) -> None:
    """Write feedback/<student>/<ASSIGNMENT>/feedback.html for every graded student (from the job table).

    Before publication a failure inside hidden tests shows only that hidden tests failed.
    """
    from autograder.records.feedback import feedback_dir, write_feedback

    course = Course.load(course_root)
    results = _graded_results(course, assignment)
    for result in results:
        write_feedback(course, result, published)
    visibility = "with hidden tests' messages" if published else "public messages only"
    click.echo(f"{assignment}: feedback for {len(results)} student(s), {visibility}, in {feedback_dir(course)}")


@cli.command("report")
@click.argument("assignment")
@course_option
def report_command(assignment: str, course_root: Path) -> None:
    """Write the course report of ASSIGNMENT (per-question histograms, pass rates, most common failures)
    and lms.csv for the LMS, in reports/<ASSIGNMENT>/, from the job table."""
    from autograder.records.course_report import write_course_report

    course = Course.load(course_root)
    results = _graded_results(course, assignment)
    path = write_course_report(course, assignment, results)
    click.echo(f"{assignment}: report on {len(results)} submission(s) in {path}")
    click.echo(f"{assignment}: grades for the LMS in {path.parent / 'lms.csv'}")


@cli.command("demo")
@click.argument("assignment", default="a1_backprop")
@click.option("--workers", type=int, default=os.cpu_count() or 1, show_default="number of cores")
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=".course/demo",
    show_default=True,
    help="Where to build the demo course (replaced if it exists).",
)
@course_option
def demo_command(assignment: str, workers: int, into: Path, course_root: Path) -> None:
    """Grade a demo batch made from the course: the solution, the blank release, one submission per
    seeded bug and a few broken files, with the local pool and job table, as an instructor would.
    Exits 1 unless the solution earns full marks, the blank release 0 and every mutant loses points."""
    import shutil

    from autograder.batch import judge_server

    judge_server.start(course_root.resolve(), assignment)  # the demo's judges import while the demo is built
    from autograder.authoring import mutants
    from autograder.authoring.demo import build_demo_course
    from autograder.authoring.verdict import demo_batch_checks
    from autograder.batch.coordinator import grade_batch

    course = Course.load(course_root)
    target = into if into.is_absolute() else course.root / into
    if target.exists():
        shutil.rmtree(target)
    demo = build_demo_course(course, assignment, target)
    count = len(list(demo.submitted_dir.iterdir()))
    click.echo(f"demo course with {count} submissions of {assignment} in {target}")
    report = grade_batch(demo, assignment, workers, force=True)
    _print_batch(demo, assignment, report, workers)
    checks = demo_batch_checks({r.student: r for r in report.results}, mutants.load(demo, assignment))
    groups = {
        "solution": "solution earns every autograded point",
        "blank": "blank release earns 0",
        "mutant": "every mutant loses points ({count})",
        "garbage": "broken files are recorded with a reason",
    }
    for group, text in groups.items():
        members = [check for check in checks if check.group == group]
        ok = bool(members) and all(check.ok for check in members)
        click.echo(f"  {'ok  ' if ok else 'MISS'} {text.format(count=len(members))}")
        for check in members:
            if not check.ok:
                click.echo(f"         {check.name}: expected {check.expected}, got {check.got}")
    if not all(check.ok for check in checks) or not all(any(c.group == g for c in checks) for g in groups):
        raise SystemExit(1)


@cli.command("check")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--timeout", type=int, help="Seconds per cell  [default: the course config's, or 120]")
@course_option
def check_command(notebook: Path, timeout: int | None, course_root: Path) -> None:
    """Run NOTEBOOK in a fresh kernel and print its public self-check, test by test (what its last cell shows).

    Needs only the notebook (a student's released folder is enough). Exit code: 0 every public test
    passes; 1 some do not; 2 the notebook could not be run.
    """
    from autograder.authoring.check import cell_timeout, check_notebook

    report = check_notebook(notebook, timeout or cell_timeout(course_root))
    click.echo(report.text)
    if not report.ok:
        raise SystemExit(1)


def _exit_without_teardown(code: object) -> NoReturn:
    """End the `course` command once its work is done: wait for its own threads, run the atexit hooks
    (temporary directories, multiprocessing's finalizers, logging), flush the output, and then leave
    without the interpreter's teardown of the modules it imported. That teardown does nothing the
    command needs, and it costs 0.2 s after `course grade` (1,400 modules: nbgrader, SQLAlchemy...) and
    0.5 s after `course grade-one` (torch), which a CI job or an instructor would wait for."""
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"), as the interpreter would print it
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader that went away (`course grade | head`): nothing left to tell it
            code = code or 1
    os._exit(code)


def main() -> NoReturn:
    """The `course` command. Tests call `cli` instead: this one ends the process."""
    code: object = 0
    try:
        cli(standalone_mode=True)
    except SystemExit as done:
        code = done.code
    except CourseError as error:
        click.echo(f"error: {error}", err=True)
        code = 2
    finally:
        if "autograder.batch.judge_server" in sys.modules:  # a verb that started the local pool's forkserver
            sys.modules["autograder.batch.judge_server"].stop()
    _exit_without_teardown(code)


if __name__ == "__main__":
    main()
