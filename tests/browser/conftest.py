"""A real dashboard in a real browser: `streamlit run app.py` on a free port, over a private workspace with a
small generated dataset, driven by Playwright through Debian's Chromium (never a downloaded browser).

Screenshots of every page go to `screenshots/` (gitignored) for a person to look at (`browser_support.py`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser_support import Dashboard

from benchmarks.dashboard import free_port, wait_for_health

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def finish_runs(home: Path) -> None:
    """Ask any run still training to stop, so no training process outlives the tests."""
    from simpsons_core.run import launcher, lookup

    previous = os.environ.get("SIMPSONS_HOME")
    os.environ["SIMPSONS_HOME"] = str(home)
    try:
        for info in lookup.list_runs():
            if info.is_active:
                launcher.cancel_run(info.id)
                deadline = time.monotonic() + 60
                while lookup.read_run(info.id).is_active and time.monotonic() < deadline:
                    time.sleep(0.5)
    finally:
        if previous is None:
            os.environ.pop("SIMPSONS_HOME", None)
        else:
            os.environ["SIMPSONS_HOME"] = previous


@contextmanager
def served(base: Path, home: Path, data: Path, env: dict[str, str]) -> Iterator[Dashboard]:
    """`streamlit run app.py` as `make run` starts it, on a free port, with `env`; every run it started is
    stopped and the server ended afterwards (its output in `base`/streamlit.log)."""
    port = free_port()
    with (base / "streamlit.log").open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=REPO,
            env=env | {"SIMPSONS_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://localhost:{port}"
        try:
            wait_for_health(url, server)
            yield Dashboard(url, home, data)
        finally:
            finish_runs(home)
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    from simpsons_core.data.demo import generate_demo_dataset

    base = tmp_path_factory.mktemp("dashboard")
    data = generate_demo_dataset(base / "data", train_per_class=24, test_per_class=6, seed=3, size=64)
    with served(base, base / "home", data, {**os.environ, "SIMPSONS_DATA": str(data)}) as dashboard:
        yield dashboard


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (`make test` installs it with apt-get)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # pages render in seconds, not milliseconds, on a busy machine
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, dashboard: Dashboard) -> Iterator:
    context = browser.new_context(viewport={"width": 1440, "height": 1400}, permissions=["camera"])
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()
