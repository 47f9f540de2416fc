"""Real servers for the tests: Debian's redis-server and PostgreSQL on loopback ports, Celery workers as
subprocesses. scripts/setup.sh installs the Debian packages when run as root; without them the tests that
need them are skipped with the reason."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


class RedisServer:
    """redis-server on 127.0.0.1, persistence on (append-only file, fsync always) in its own folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> RedisServer:
        argv = [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                str(self.folder), "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--protected-mode", "yes"]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 20, "redis-server to answer")
        return self

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2)

    def ping(self) -> bool:
        try:
            return self.client().ping()
        except Exception:
            return False

    def stop(self) -> None:
        """SIGTERM: redis-server writes its data out and exits (what a restart of the service does)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


class Worker:
    """`course worker --queue Q` as a subprocess in its own session (its log in a file)."""

    def __init__(self, queue: str, broker: str, log: Path, concurrency: int = 1, env: dict | None = None):
        self.log = log
        environment = {**os.environ, "COURSE_BROKER_URL": broker, **(env or {})}
        argv = [sys.executable, "-m", "autograder.cli", "worker", "--queue", queue, "--concurrency", str(concurrency)]
        self.handle = log.open("ab")
        self.process = subprocess.Popen(argv, env=environment, stdout=self.handle, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> Worker:
        wait_until(lambda: b" ready." in self.log.read_bytes() or self.process.poll() is not None, timeout,
                   f"the worker to start (log: {self.log})")  # fmt: skip
        assert self.process.poll() is None, self.log.read_text()
        return self

    def pool_processes(self) -> list[psutil.Process]:
        """The prefork pool's processes (they run the tasks)."""
        return psutil.Process(self.process.pid).children()

    def succeeded(self) -> int:
        return self.log.read_text().count("succeeded in")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self.handle.close()

    def kill(self) -> None:
        """kill -9 the whole worker (main process and pool)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.handle.close()


class PostgresServer:
    """A throwaway PostgreSQL cluster: initdb in a temporary folder of its own (outside pytest's, which
    only root may enter), owned by the `postgres` user when we are root (initdb refuses root), listening
    on 127.0.0.1 only; one database. stop() removes it."""

    def __init__(self, database: str = "gradebook"):
        self.bin = POSTGRES_BIN[-1]
        self.folder = Path(tempfile.mkdtemp(prefix="course-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.database = database
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}\n{done.stdout}{done.stderr}")

    def start(self) -> PostgresServer:
        if self.user:
            shutil.chown(self.folder, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
