"""The `course` command: one verb per arrow of the course's data flow (see README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import click

from autograder.command import CourseGroup, run
from autograder.course import BROKER_URL_ENV, DEFAULT_BROKER_URL, LANGUAGE_ENV, Course, CourseError, hand_to_owner
from autograder.grading.parts import GPU_TESTS, QUEUES, Part
from autograder.server.hub import IDLE_TIMEOUT_S, PROCESS_MEMORY_BYTES

course_option = click.option("--course", "course_root", type=click.Path(file_okay=False, path_type=Path), default=".",
                             show_default=True,
                             help="The course directory (holds nbgrader_config.py, source/, release/, submitted/).")
workers_option = click.option("--workers", type=int, default=os.cpu_count() or 1, show_default="number of cores",
                              help="Grading workers running in parallel.")  # fmt: skip


def _set_language(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--lang for the verbs that write what students read: the workers they start inherit it."""
    if value is not None:
        from autograder.authoring.translation import check_language

        try:
            os.environ[LANGUAGE_ENV] = check_language(value)
        except CourseError as error:
            raise click.BadParameter(str(error)) from None
    return value


language_option = click.option("--lang", "language", callback=_set_language, expose_value=False,
                               help="Messages and pages in this language (en, zh)  [default: c.Course.language]")
broker_option = click.option("--broker", help=f"Redis URL of the Celery backend  [default: {BROKER_URL_ENV}, "
                             f"else c.Grader.broker_url, else {DEFAULT_BROKER_URL}]")


def _assignments(course: Course, assignments: tuple[str, ...], all_: bool) -> list[str]:
    if all_:
        return course.assignments()
    if not assignments:
        raise click.UsageError("name an assignment or pass --all")
    return list(assignments)


@click.group(cls=CourseGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Release, grade and validate the deep-learning course.

    Every verb works on an nbgrader course directory (default: the current one).
    """


@cli.command("release")
@click.argument("assignments", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Release every assignment in source/.")
@click.option("--no-execute", is_flag=True, help="Write release/ only; leave solutions/ as they are.")
@click.option("--force-execute", is_flag=True, help="Execute the solutions even when they are up to date.")
@click.option("--lang", "language", help="Release in this language (en, zh)  [default: c.Course.language, else en]; "
              "another language than the course's goes to release-<lang>/ and solutions-<lang>/.")
@course_option
def release_command(
    assignments: tuple[str, ...], all_: bool, no_execute: bool, force_execute: bool, language: str | None,
    course_root: Path,
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
        report = release(course, assignment, execute_solutions=not no_execute, force_execute=force_execute,
                         language=language)
        click.echo(report.line())


@cli.command("validate")
@click.argument("assignments", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Validate every assignment in source/.")
@click.option("--with-nbgrader", is_flag=True, help="Also grade solution and release with nbgrader autograde.")
@click.option("--quick", is_flag=True, help="Grade each mutant only up to its first lost point (faster).")
@click.option("--seeds", type=click.IntRange(min=0), default=0,
              help="Also grade the solution re-seeded ({seed} = 1..N-1 in mutants.toml's [[seed]] entries).")
@click.option("--auto-mutants", "auto_mutants", type=click.IntRange(min=0), is_flag=False, flag_value=0, default=None,
              metavar="[N]", help="Grade automatic mutants of the solution regions (all, or a sample of N) and "
                                  "report the kill rate.")
@click.option("--sample-seed", type=int, default=0, show_default=True, help="Which sample --auto-mutants N takes.")
@workers_option
@course_option
def validate_command(
    assignments: tuple[str, ...], all_: bool, with_nbgrader: bool, quick: bool, seeds: int,
    auto_mutants: int | None, sample_seed: int, workers: int, course_root: Path,
) -> None:  # fmt: skip
    """Check that an assignment is gradable and its tests catch bugs.

    Grades (with `course grade`'s engine) the solution, which must earn every autograded point, the
    untouched release, which must earn none, and every seeded bug, mistake and cheat in
    source/<a>/mutants.toml, each of which must lose points. Prints a table; exits 1 on any miss.
    """
    from autograder.authoring.validate import validate

    course = Course.load(course_root)
    failed = False
    for assignment in _assignments(course, assignments, all_):
        report = validate(course, assignment, with_nbgrader=with_nbgrader, workers=workers, quick=quick,
                          seeds=seeds, auto=auto_mutants is not None, auto_mutants_sample=auto_mutants or None,
                          sample_seed=sample_seed)  # fmt: skip
        click.echo(report.table())
        failed = failed or not report.ok
    if failed:
        raise SystemExit(1)


@cli.command("grade")
@click.argument("assignment")
@click.option("--student", "students", multiple=True, help="Grade only this student (repeatable).")
@workers_option
@click.option("--force", is_flag=True, help="Grade again even submissions that have not changed.")
@click.option("--backend", type=click.Choice(["local", "celery"]), default="local", show_default=True,
              help="local: worker processes here. celery: tasks on Redis queues cpu/gpu for `course worker`s.")
@broker_option
@click.option("--gpu-tests", type=click.Choice(GPU_TESTS), default="here", show_default=True,
              help="Local backend: grade GPU-tagged tests here (CPU smoke budgets without CUDA), or leave them "
                   "'waiting for GPU runner' for a Celery gpu worker.")
@click.option("--no-wait", is_flag=True,
              help="Celery backend: return once the CPU parts are graded; GPU parts stay queued "
                   "(run again to collect).")
@language_option
@course_option
def grade_command(
    assignment: str, students: tuple[str, ...], workers: int, force: bool, backend: str, broker: str | None,
    gpu_tests: str, no_wait: bool, course_root: Path,
) -> None:  # fmt: skip
    """Grade submitted/<student>/<ASSIGNMENT>/ for every student, tamper-proof, in parallel.

    Student code runs sandboxed; the source's tests run in a separate trusted judge. Writes the gradebook,
    autograded/, reports/<ASSIGNMENT>/grades.csv and results/<student>.json. Resumable and idempotent.
    With --backend celery, GPU-tagged tests go to queue gpu (CUDA runners) and are merged back.

    Exit code: 0 all graded cleanly; 1 graded, some submissions had problems (each recorded with its
    reason); 2 the grader itself failed; 130 interrupted (run again to finish).
    """
    if backend == "local":
        from autograder.batch import judge_server

        judge_server.start(course_root.resolve(), assignment)  # first: its imports (torch...) overlap ours
    from autograder.batch.coordinator import grade_batch
    from autograder.records.summary import batch_summary

    course = Course.load(course_root)
    try:
        report = grade_batch(
            course, assignment, workers, force, list(students) or None,
            backend=backend, gpu_tests=gpu_tests, broker_url=broker, wait_for_gpu=not no_wait,
        )  # fmt: skip
    except KeyboardInterrupt:
        click.echo("interrupted: finished submissions are recorded; run the same command again to grade the rest")
        raise SystemExit(130) from None
    finally:
        hand_to_owner(course)
    click.echo(batch_summary(course, assignment, report, workers))
    if report.has_problems:
        raise SystemExit(1)


@cli.command("worker")
@click.option("--queue", type=click.Choice(QUEUES), required=True, help="Which jobs this worker takes.")
@click.option("--concurrency", type=int, default=os.cpu_count() or 1, show_default="number of cores")
@broker_option
def worker_command(queue: str, concurrency: int, broker: str | None) -> None:
    """Run a Celery grading worker for `course grade --backend celery`.

    --queue gpu starts only with CUDA and gives each process a GPU (CUDA_VISIBLE_DEVICES). The worker
    reads courses at the paths the coordinator sends (same machine or a shared filesystem).
    """
    from autograder.batch.celery_app import run_worker

    run_worker(queue, concurrency, broker)  # a gpu worker without CUDA: parts.NoCuda, a CourseError (exit 2)


@cli.command("grade-one")
@click.argument("submission", type=click.Path(exists=True, path_type=Path))
@click.option("--assignment", required=True, help="Which assignment the submission is for.")
@click.option("--results", "results_path", type=click.Path(dir_okay=False, path_type=Path), default="results.json",
              show_default=True, help="Where to write Gradescope's results.json.")  # fmt: skip
@click.option("--part", type=click.Choice([p.value for p in Part]), default="all", show_default=True,
              help="cpu: GPU-tagged tests stay pending (a CPU runner); gpu: only those, on a CUDA runner.")  # fmt: skip
@course_option
def grade_one_command(submission: Path, assignment: str, results_path: Path, part: str, course_root: Path) -> None:
    """Grade one submission (a notebook or a folder) for CI, the same way `course grade` does.

    Writes Gradescope's results.json. Exits 0 when the submission was graded, whatever its score (a
    broken notebook is graded too: 0 points with the reason); 2 only when the grader itself failed.
    """
    from autograder.grading.grade_one import grade_one, summary

    result = grade_one(Course.load(course_root), assignment, submission, results_path, part)
    click.echo(summary(result, results_path))


@cli.command("export-otter")
@click.argument("assignment")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the zip.  [default: dist/<ASSIGNMENT>-otter.zip in the course]")  # fmt: skip
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
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=".github/workflows/grade.yml",
              show_default=True, help="Where to write the workflow.")  # fmt: skip
@click.option("--gpu/--no-gpu", "gpu_job", default=None,
              help="Add the [self-hosted, gpu] job.  [default: when the assignment has GPU-tagged tests]")  # fmt: skip
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


@cli.command("feedback")
@click.argument("assignment")
@click.option("--published", is_flag=True, help="Grades are published: show hidden tests' failure messages too.")
@language_option
@course_option
def feedback_command(assignment: str, published: bool, course_root: Path) -> None:
    """Write feedback/<student>/<ASSIGNMENT>/feedback.html for every graded student (from the job table).

    Before publication a failure inside hidden tests shows only that hidden tests failed.
    """
    from autograder.batch.jobs import graded_results
    from autograder.records.feedback import write_all_feedback

    course = Course.load(course_root)
    click.echo(write_all_feedback(course, graded_results(course, assignment), published))
    hand_to_owner(course)


@cli.command("report")
@click.argument("assignment")
@course_option
def report_command(assignment: str, course_root: Path) -> None:
    """Write the course report of ASSIGNMENT (per-question histograms, pass rates, most common failures)
    and lms.csv for the LMS, in reports/<ASSIGNMENT>/, from the job table."""
    from autograder.batch.jobs import graded_results
    from autograder.records.course_report import write_course_report

    course = Course.load(course_root)
    results = graded_results(course, assignment)
    path = write_course_report(course, assignment, results)
    hand_to_owner(course)
    click.echo(f"{assignment}: report on {len(results)} submission(s) in {path}; LMS grades: {path.parent / 'lms.csv'}")


@cli.command("similarity")
@click.argument("assignment")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Pairs shown side by side in similarity.html.")
@click.option("--common", "common_share", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Ignore code found in more than this share of the submissions (common idioms).")
@course_option
def similarity_command(assignment: str, top: int, common_share: float, course_root: Path) -> None:
    """Rank pairs of submissions of ASSIGNMENT by the solution code they share: reports/<ASSIGNMENT>/
    similarity.csv (every pair sharing code) and similarity.html (the top pairs side by side).

    Only solution cells are compared, after normalisation (renamed variables, reordered functions, comments
    and spacing do not matter); release code and common idioms are ignored. Evidence for a person to
    read, never an automatic penalty. Exit code 1 when some notebook was skipped (each is listed).
    """
    from autograder.records.similarity_report import write_similarity_report

    course = Course.load(course_root)
    report = write_similarity_report(course, assignment, top, common_share)
    hand_to_owner(course)
    click.echo(report.line())
    for skipped in report.result.skipped:
        click.echo(f"  skipped {skipped}")
    if report.result.skipped:
        raise SystemExit(1)


@cli.command("demo")
@click.argument("assignment", default="a1_backprop")
@workers_option
@click.option("--into", type=click.Path(file_okay=False, path_type=Path), default=".course/demo", show_default=True,
              help="Where to build the demo course (replaced if it exists).")  # fmt: skip
@course_option
def demo_command(assignment: str, workers: int, into: Path, course_root: Path) -> None:
    """Grade a demo batch made from the course: the solution, the blank release, one submission per
    seeded bug and a few broken files, with the local pool and job table, as an instructor would.
    Exits 1 unless the solution earns full marks, the blank release 0 and every mutant loses points."""
    from autograder.batch import judge_server

    judge_server.start(course_root.resolve(), assignment)  # the demo's judges import while the demo is built
    from autograder.authoring.verdict import run_demo

    course = Course.load(course_root)
    target = into if into.is_absolute() else course.root / into
    if not run_demo(course, assignment, workers, target, click.echo):
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


@cli.command("translate")
@click.argument("assignments", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every assignment in source/.")
@click.option("--lang", "language", required=True, help="The language of the translation files, e.g. zh.")
@click.option("--check", "check_only", is_flag=True, help="Only report; write nothing.")
@course_option
def translate_command(assignments: tuple[str, ...], all_: bool, language: str, check_only: bool,
                      course_root: Path) -> None:
    """Bring the translation files up to date with the English source: an entry marked `todo` for each
    cell that is new or changed (source/<a>/translations/<notebook>.<lang>.yaml), then list what is
    left to translate. Exit code 1 while anything is. With --check, nothing is written."""
    from autograder.authoring.translation import assignment_translations

    course = Course.load(course_root)
    complete = True
    for assignment in _assignments(course, assignments, all_):
        report = assignment_translations(course, assignment, language, update=not check_only)
        click.echo("\n".join(report.lines()))
        complete = complete and report.ok
    if not complete:
        raise SystemExit(1)


@cli.command("serve")
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV with a 'username' column (and optionally 'name'): one Linux account per student.")
@click.option("--instructor", default="instructor", show_default=True, help="The instructor's account.")
@click.option("--exchange", type=click.Path(file_okay=False, path_type=Path), default="/srv/nbgrader/exchange",
              show_default=True, help="nbgrader's exchange folder.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address the hub listens on.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--idle-timeout", type=click.IntRange(min=0), default=IDLE_TIMEOUT_S // 60, show_default=True,
              help="Minutes after which a user's idle server is stopped (their files stay); 0: never.")
@click.option("--memory", type=click.FloatRange(min=0.25), default=PROCESS_MEMORY_BYTES / 1024**3, show_default=True,
              help="GiB each process of a user's server may use (JupyterLab, each kernel).")
@course_option
def serve_command(roster: Path, instructor: str, exchange: Path, ip: str, port: int, idle_timeout: int,
                  memory: float, course_root: Path) -> None:
    """Set up and run the course server (as root): a Linux account per roster row (new passwords in
    .hub/passwords.csv), nbgrader's exchange, and JupyterHub, each user's JupyterLab in a sandbox.
    Runs until Ctrl-C. To add students, add rows to the roster and run it again."""
    import signal

    from autograder.server import hub
    from autograder.server.accounts import remove_accounts

    course = Course.load(course_root)
    settings, created = hub.prepare(course, roster, instructor, exchange.resolve(), ip, port,
                                    idle_timeout_s=idle_timeout * 60, process_memory_bytes=int(memory * 1024**3))
    log = Path(settings.state_dir) / "hub.log"
    process = hub.start_hub(settings, log)
    try:
        hub.wait_until_serving(settings, process, log)
    except CourseError as error:
        remove_accounts(created)
        raise CourseError(f"{error}; the {len(created)} account(s) this run created were removed") from None
    signal.signal(signal.SIGTERM, lambda *_: hub.stop_hub(process))
    click.echo(f"course server: http://{ip}:{port} ({len(settings.students)} students, instructor {instructor}); "
               f"log {log}; Ctrl-C stops it")  # fmt: skip
    try:
        code = process.wait()
    except KeyboardInterrupt:
        hub.stop_hub(process)
        code = 0
    if code:
        raise click.ClickException(f"JupyterHub stopped with exit code {code}: see {log}")


@cli.command("publish")
@click.argument("assignment")
@course_option
def publish_command(assignment: str, course_root: Path) -> None:
    """Put release/<ASSIGNMENT>/ on the course server's exchange, where students fetch it."""
    from autograder.server.exchange import Exchange, publish
    from autograder.server.hub import load_settings

    course = Course.load(course_root)
    settings = load_settings(course)
    target = publish(course, Exchange(Path(settings.exchange), course.course_id), assignment)
    click.echo(f"{assignment}: published to {target}")


@cli.command("collect")
@click.argument("assignment")
@course_option
def collect_command(assignment: str, course_root: Path) -> None:
    """Copy each student's latest submission of ASSIGNMENT from the exchange to submitted/ (timestamps kept).
    Exit code 1 when some submission was ignored or a file left out (each is listed)."""
    from autograder.server import accounts
    from autograder.server.exchange import Exchange, collect
    from autograder.server.hub import load_settings

    course = Course.load(course_root)
    settings = load_settings(course)
    uids = {name: found.uid for name in settings.students if (found := accounts.account(name)) is not None}
    done = collect(course, Exchange(Path(settings.exchange), course.course_id), assignment, uids)
    hand_to_owner(course)
    click.echo(f"{assignment}: collected {len(done.copied)}, unchanged {len(done.unchanged)}, "
               f"problems {len(done.problems)}")  # fmt: skip
    for problem in done.problems:
        click.echo(f"  {problem}")
    if done.problems:
        raise SystemExit(1)


@cli.command("return-feedback")
@click.argument("assignment")
@course_option
def return_feedback_command(assignment: str, course_root: Path) -> None:
    """Put the feedback pages of ASSIGNMENT (`course feedback` writes them) on the exchange, where each
    student's Assignment List fetches their own."""
    from autograder.server.exchange import Exchange, return_feedback
    from autograder.server.hub import load_settings

    course = Course.load(course_root)
    settings = load_settings(course)
    returned, problems = return_feedback(course, Exchange(Path(settings.exchange), course.course_id), assignment)
    click.echo(f"{assignment}: feedback returned to {len(returned)} student(s)")
    for problem in problems:
        click.echo(f"  {problem}")
    if problems:
        raise SystemExit(1)


def main() -> NoReturn:
    """The `course` command. Tests call `cli` instead: this one ends the process."""
    run(cli)


if __name__ == "__main__":
    main()
