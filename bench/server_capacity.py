"""How many students one machine's course server holds: the start time and memory of one student's server.

    sudo .venv/bin/python bench/server_capacity.py [--students 3]

Starts the course server (`course serve`'s steps, on a copy of the course, on loopback) with N students,
logs each in with headless Chromium one after another, and measures per student: the time from the login
form to a usable JupyterLab (the hub spawns the sandboxed server), the memory of that server alone, then
with a notebook kernel that imported torch and ran a matrix product (what a course notebook does first).
Memory is PSS (shared pages split between the processes sharing them), summed over every process of the
user, so N servers add up honestly; RSS is shown too. From the mean it works out how many students fit in
a 24 GiB machine, keeping 4 GiB for the system, the hub and the grader. Needs root (accounts, the hub).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.server import accounts  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.servers import wait_until  # noqa: E402
from tests.test_server_browser import Hub  # noqa: E402

MACHINE_GIB, RESERVED_GIB = 24, 4
WARM_UP = "import numpy as np, torch\nx = torch.randn(512, 512) @ torch.randn(512, 512)\nprint('ready', float(x.sum()))"


def memory_mib(uid: int) -> tuple[float, float, int]:
    """(PSS, RSS) in MiB summed over the processes running as `uid`, and how many there are."""
    pss = rss = count = 0
    for process in psutil.process_iter(["uids"]):
        try:
            if process.info["uids"] and process.info["uids"].real == uid:
                info = process.memory_full_info()
                pss, rss, count = pss + info.pss, rss + info.rss, count + 1
        except psutil.Error:
            continue
    return pss / 2**20, rss / 2**20, count


def run_warm_up(page, url: str, username: str) -> None:
    """A new notebook with WARM_UP, run from the page through JupyterLab's own kernel (Run All)."""
    notebook = {"cells": [{"cell_type": "code", "source": WARM_UP, "metadata": {}, "outputs": [],
                           "execution_count": None}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    page.evaluate(
        """async ([url, body]) => {
            const xsrf = decodeURIComponent((document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '');
            await fetch(url, {method: 'PUT', headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf}, body});
        }""",
        [f"/user/{username}/api/contents/warm.ipynb", json.dumps({"type": "notebook", "content": notebook})],
    )
    page.goto(f"{url}/user/{username}/lab/workspaces/warm/tree/warm.ipynb?reset")
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=120_000)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.click("li[data-command='runmenu:run-all']")
    page.locator(".jp-OutputArea", has_text="ready").wait_for(timeout=120_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="dlcb-capacity-"))
    base.chmod(0o755)
    hub = None
    try:
        hub = Hub(base, students=args.students)
        rows = []
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = []
            for username in hub.students:
                uid = accounts.account(username).uid
                started = time.monotonic()
                page = hub_login(chromium, hub, username)
                start_s = time.monotonic() - started
                wait_until(lambda: memory_mib(uid)[2] > 0, 30, "the user's processes")  # noqa: B023
                idle = memory_mib(uid)
                run_warm_up(page, hub.url, username)
                time.sleep(2)
                warm = memory_mib(uid)
                rows.append((username, start_s, idle, warm))
                pages.append(page)
                print(f"{username}: server up in {start_s:.1f} s; server alone PSS {idle[0]:.0f} MiB "
                      f"(RSS {idle[1]:.0f}, {idle[2]} processes); with a torch kernel PSS {warm[0]:.0f} MiB "
                      f"(RSS {warm[1]:.0f}, {warm[2]} processes)")  # fmt: skip
            hub_process = psutil.Process(hub.process.pid)
            proxies = [p for p in hub_process.children() if "configurable-http-proxy" in " ".join(p.cmdline())]
            hub_pss = sum(p.memory_full_info().pss for p in [hub_process, *proxies]) / 2**20
            chromium.close()
        per_student = statistics.mean(row[3][0] for row in rows)
        fits = int((MACHINE_GIB - RESERVED_GIB) * 1024 / per_student)
        print(f"\nstart time: mean {statistics.mean(r[1] for r in rows):.1f} s, max {max(r[1] for r in rows):.1f} s")
        print(f"per student with a torch kernel: PSS {per_student:.0f} MiB; hub and proxy: PSS {hub_pss:.0f} MiB")
        print(f"a {MACHINE_GIB} GiB machine, {RESERVED_GIB} GiB kept for the system, hub and grader: "
              f"{fits} students with a kernel running at once")  # fmt: skip
    finally:
        if hub is not None:
            hub.stop()
        shutil.rmtree(base, ignore_errors=True)


def hub_login(chromium, hub: Hub, username: str):
    from tests.test_server_browser import log_in

    return log_in(chromium, hub, username)


if __name__ == "__main__":
    main()
