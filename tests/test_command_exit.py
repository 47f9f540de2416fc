"""The `course` command ends as soon as its work is done: exit codes, output, atexit hooks and its own
threads are kept; only the interpreter's teardown of the imported modules is skipped."""

import subprocess
import sys
import textwrap


def _run_course(args: list[str], before: str = "") -> subprocess.CompletedProcess:
    """`course ARGS` as the console script runs it (autograder.cli.main), after the Python in `before`."""
    run = f"import sys\nfrom autograder.cli import main\nsys.argv = ['course', *{args!r}]\nmain()\n"
    code = textwrap.dedent(before) + "\n" + run
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_atexit_hooks_and_threads_finish_but_module_teardown_is_skipped():
    done = _run_course(
        ["--help"],
        before="""
        import atexit, threading, time
        atexit.register(lambda: print("atexit hook ran", flush=True))

        class TornDown:
            def __del__(self):
                print("module teardown ran", flush=True)

        kept_until_teardown = TornDown()
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished", flush=True))).start()
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: course" in done.stdout
    assert "thread finished" in done.stdout
    assert "atexit hook ran" in done.stdout
    assert "module teardown ran" not in done.stdout


def test_exit_codes_and_messages_are_those_of_the_command(tmp_path):
    unknown_verb = _run_course(["no-such-verb"])
    assert unknown_verb.returncode == 2
    assert "No such command 'no-such-verb'" in unknown_verb.stderr

    not_a_course = _run_course(["grade", "a1", "--course", str(tmp_path)])
    assert not_a_course.returncode == 2
    assert not_a_course.stderr.startswith("error: ")

    stops_with_a_message = "import sys, click\nclick.Group.main = lambda *a, **k: sys.exit('stopped: a message')"
    message = _run_course(["--help"], before=stops_with_a_message)
    assert message.returncode == 1
    assert "stopped: a message" in message.stderr
