"""Section 8, the dashboard's cost: a short run started from the Train page with a tab open, against the same
run from the CLI; and the Streamlit server's CPU use with an idle tab over a workspace full of runs.

Why: a server that watched the whole repository (`.venv`'s 6,500 folders, a workspace of runs) kept a core
busy with one idle tab, and a 3-epoch run from the Train page took 2.5x as long as from the CLI. The server is
started as `make run` starts it (`streamlit run app.py` in the repository, so `.streamlit/config.toml`
applies; only the port differs), the page is driven by Playwright through Debian's Chromium, and the
workspace lies inside the repository, as the default `workspace/` does, so a file watcher would see it.
Chromium is never downloaded: without /usr/bin/chromium the section says so and measures nothing.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import REPO_ROOT, Job, errors, run_alternating, run_job, stats
from benchmarks.report import SCRATCH, Section, Table, Target

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
RECIPE = "studio"
RUN = {"epochs": 3, "image_size": 64}  # the 3-epoch studio run
QUICK_RUN = {"epochs": 1, "image_size": 32}
IDLE_SECONDS = 10.0
QUICK_IDLE_SECONDS = 3.0
RUNS_IN_FULL_WORKSPACE = 60  # the runs measured here, copied (hard links) up to this many
TARGET_RATIO = 0.95  # issue 14: a run from the dashboard is at least 0.95x as fast as from the CLI
# An idle server may take at most what that target leaves: 5% of the machine's cores.
IDLE_SHARE_OF_MACHINE = 0.05
CONFIGURED = "repository config (as `make run`)"
# Server -> options over `make run`'s; Streamlit's default watcher is what `.streamlit/config.toml` turns off.
WATCHERS = {CONFIGURED: (), "Streamlit's default file watcher": ("--server.fileWatcherType", "auto")}
INOTIFY_OVERFLOW = "Inotify queue overflowed"
ONE_FORM_WITH_EPOCHS = """epochs => {
    const fields = [...document.querySelectorAll('.st-key-train_form input[aria-label="Epochs"]')];
    return fields.length === 1 && fields[0].value === epochs;
}"""
SETTLE_MS = 5000  # after the Train page shows: its first full runs end before the idle time is measured
PROFILE_SECONDS = 5.0
PROFILE_FRAMES, PROFILE_TOP = 3, 4  # innermost frames named per profile line; lines shown
PAGE_LIMIT_MS = 120_000  # what waits on TensorFlow (importing it, tracing) on a busy 2-core machine
RUN_LIMIT_MS = 900_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer at {url} within {limit:.0f} s")


@contextmanager
def serving(log: Path, options: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """`streamlit run app.py` from the repository root, as `make run` starts it, on a free port, with this
    process's SIMPSONS_HOME and SIMPSONS_DATA; yields (url, psutil.Process of the server)."""
    import psutil

    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), *options]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://localhost:{port}"
        try:
            wait_for_health(url, server)
            yield url, psutil.Process(server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@contextmanager
def browser_tab() -> Iterator[Any]:
    """A Playwright page in Debian's Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            tab = browser.new_context(viewport={"width": 1440, "height": 1400}).new_page()
            tab.set_default_timeout(PAGE_LIMIT_MS)
            yield tab
        finally:
            browser.close()


def open_train_page(tab: Any, url: str) -> None:
    """The Train page, rendered: its heading and its settings."""
    from playwright.sync_api import expect

    tab.goto(f"{url}/train")
    expect(tab.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=PAGE_LIMIT_MS)
    expect(tab.locator(".st-key-train_form")).to_be_visible(timeout=PAGE_LIMIT_MS)


def cpu_seconds(process: Any) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure_dashboard_run(epochs: int, image_size: int) -> dict[str, Any]:
    """Start the recipe's run from the Train page (SIMPSONS_DATA's dataset) and keep the tab open until the
    page says Completed; the run's own figures, and the server's CPU seconds meanwhile."""
    from playwright.sync_api import expect

    from simpsons_core.config import recipe
    from simpsons_core.run.lookup import list_runs

    before = {info.id for info in list_runs()}
    with (
        tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp,
        serving(Path(tmp) / "streamlit.log") as (url, server),
        browser_tab() as tab,
    ):
        open_train_page(tab, url)
        tab.get_by_role("radio", name=RECIPE, exact=True).click()  # the recipe picker's segment
        form = tab.locator(".st-key-train_form")
        # Until the rerun ends, the default recipe's form shows beside this one's.
        tab.wait_for_function(ONE_FORM_WITH_EPOCHS, arg=str(recipe(RECIPE).epochs))
        for label, value in (("Epochs", epochs), ("Image size (pixels)", image_size)):
            field = form.get_by_label(label, exact=True)
            field.fill(str(value))
            field.press("Tab")
        cpu_before = cpu_seconds(server)
        tab.get_by_role("button", name="Start training").click()
        completed = tab.get_by_test_id("stAlertContainer").filter(has_text="Completed.")
        expect(completed).to_be_visible(timeout=RUN_LIMIT_MS)
        server_cpu = cpu_seconds(server) - cpu_before
    [run] = [info for info in list_runs() if info.id not in before]
    return {**run_figures(run, epochs, image_size), "server_cpu_seconds": server_cpu}


def measure_cli_run(epochs: int, image_size: int) -> dict[str, Any]:
    """The same run from a terminal: `python -m simpsons_core train --recipe ... --epochs ... --img-size ...`
    on SIMPSONS_DATA's dataset."""
    from simpsons_core.run.lookup import read_run

    command = [sys.executable, "-m", "simpsons_core", "train", "--recipe", RECIPE]
    command += ["--epochs", str(epochs), "--img-size", str(image_size)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    named = [line.split()[1].rstrip(":") for line in done.stdout.splitlines() if line.startswith("Run ")]
    if done.returncode != 0 or not named:
        raise RuntimeError(f"train exited with {done.returncode}: {(done.stderr or done.stdout)[-1000:]}")
    return run_figures(read_run(named[0]), epochs, image_size)


def run_figures(run: Any, epochs: int, image_size: int) -> dict[str, Any]:
    """A finished run's times: its epochs' own seconds (metrics.jsonl) and start to finish (status.json,
    whole seconds); refuses a run that is not the one asked for."""
    if run.state != "completed":
        raise RuntimeError(f"run {run.id} ended {run.state}: {run.error}")
    asked = (RECIPE, epochs, image_size)
    got = (run.config.get("recipe"), run.config.get("epochs"), run.config.get("image_size"))
    if got != asked:
        raise RuntimeError(f"run {run.id} trained {got}, not {asked}")
    started, finished = (datetime.fromisoformat(run.status[key]) for key in ("started_at", "finished_at"))
    return {
        "run_id": run.id,
        "train_seconds": sum(line.get("seconds") or 0.0 for line in run.epochs),
        "run_seconds": (finished - started).total_seconds(),
        "precision": (run.status.get("precision") or {}).get("precision"),  # what "auto" resolved to
    }


def measure_idle_server(watcher: str, seconds: float, profile_seconds: float = 0.0) -> dict[str, Any]:
    """The server's CPU seconds over `seconds` with one tab idle on the Train page (which polls the run
    folder once a second), over this process's workspace, and the inotify overflows it logged meanwhile;
    then, with `profile_seconds`, where it held the GIL over that many more seconds (`gil_profile`)."""
    from simpsons_core import paths

    folders = sum(1 for path in paths.home().rglob("*") if path.is_dir())
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        log = Path(tmp) / "streamlit.log"
        with serving(log, WATCHERS[watcher]) as (url, server), browser_tab() as tab:
            open_train_page(tab, url)
            tab.wait_for_timeout(SETTLE_MS)
            overflows_before = log.read_text(errors="replace").count(INOTIFY_OVERFLOW)
            cpu_before, started = cpu_seconds(server), time.perf_counter()
            tab.wait_for_timeout(seconds * 1000)
            server_cpu, elapsed = cpu_seconds(server) - cpu_before, time.perf_counter() - started
            overflows = log.read_text(errors="replace").count(INOTIFY_OVERFLOW) - overflows_before
            profile = gil_profile(server.pid, profile_seconds, Path(tmp)) if profile_seconds else {}
    return {
        "server_cpu_seconds": server_cpu,
        "seconds": elapsed,
        "cores": server_cpu / elapsed,
        "inotify_overflows": overflows,
        "workspace_folders": folders,
        "gil_profile": profile,
    }


def gil_profile(pid: int, seconds: float, tmp: Path) -> dict[str, float]:
    """Where process `pid` holds the GIL over `seconds` (py-spy, without pausing it): the share of samples
    per innermost frames, biggest first; empty when py-spy is missing."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return {}
    raw = tmp / "gil.txt"
    command = [str(py_spy), "record", "--pid", str(pid), "--duration", str(round(seconds)), "--gil"]
    command += ["--nonblocking", "--rate", "50", "--format", "raw", "--output", str(raw)]
    subprocess.run(command, capture_output=True, check=False)
    samples: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count = line.rpartition(" ")
        samples[" <- ".join(reversed(stack.split(";")[-PROFILE_FRAMES:]))] += int(count)
    total = sum(samples.values())
    return {stack: count / total for stack, count in samples.most_common(PROFILE_TOP)}


def fill_workspace(home: Path, runs: int) -> int:
    """Copy (hard links) the workspace's runs until it holds `runs` of them, as a user's workspace fills up;
    returns how many it holds."""
    runs_dir = home / "runs"
    if not runs_dir.is_dir():
        return 0
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        return 0
    for index in range(max(0, runs - len(folders))):
        source = folders[index % len(folders)]
        shutil.copytree(source, source.with_name(f"{source.name}-copy{index:03d}"), copy_function=os.link)
    return max(runs, len(folders))


def run(ctx: Context) -> Section:
    section = Section("dashboard", f"Training from the dashboard vs the CLI ({RECIPE} recipe)")
    if not CHROMIUM.exists():
        section.notes = [
            f"Skipped: Debian's Chromium ({CHROMIUM}) is not installed; `make browser` installs it."
        ]
        return section
    settings = QUICK_RUN if ctx.quick else RUN
    repeats = ctx.repeats if ctx.quick else max(2, ctx.repeats)
    seconds = QUICK_IDLE_SECONDS if ctx.quick else IDLE_SECONDS
    SCRATCH.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="dashboard-", dir=SCRATCH))
    try:
        # Inside the repository, as the default workspace/ is; one for both variants, as a user has one.
        env = {"SIMPSONS_HOME": str(scratch / "workspace"), "SIMPSONS_DATA": str(ctx.data.small)}
        # The scan cache warm for both variants (a smoke run's figures mean nothing: no warm-up).
        warmup = {} if ctx.quick else run_job(Job("warm-up", "cli_run", {**settings, "epochs": 1}, env))
        jobs = [Job(variant, f"{variant}_run", settings, env) for variant in ("dashboard", "cli")]
        results = run_alternating(jobs, repeats, ctx.log, timeout=1200)
        runs_held = fill_workspace(scratch / "workspace", RUNS_IN_FULL_WORKSPACE)
        idle = {  # only the repository's server is profiled: the other is there for comparison
            watcher: run_job(Job(watcher, "idle_server", idle_params(watcher, seconds), env))
            for watcher in WATCHERS
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    section.raw = {"warmup": warmup, "runs": results, "idle": idle}
    problems = [*errors([warmup]), *(e for runs in results.values() for e in errors(runs))]
    section.error = "; ".join([*problems, *errors(list(idle.values()))])
    section.tables.append(comparison_table(results, settings, repeats))
    section.targets.append(ratio_target(results))
    section.tables.append(idle_table(idle, runs_held, seconds))
    section.targets.append(idle_target(idle[CONFIGURED], section))
    section.notes = [
        f"The {RECIPE} recipe for {settings['epochs']} epoch(s) at {settings['image_size']} px on the "
        "bench's small images, from the Train page (the tab open until it says Completed) and from "
        "`python -m simpsons_core train`, alternated, in one workspace inside the repository; an untimed "
        "1-epoch run first warms its caches (not in a quick run).",
        "dashboard/CLI = CLI training seconds / dashboard training seconds (the epochs' own time, "
        "metrics.jsonl); start to completed comes from status.json, in whole seconds.",
        f"Idle: the server's own CPU seconds over {seconds:.0f} s with one tab on the Train page (its live "
        f"panel polls once a second), the runs above copied into a workspace of {runs_held} runs. Goal: "
        f"below {IDLE_SHARE_OF_MACHINE:.0%} of this machine's {os.cpu_count()} cores, what the "
        f"{TARGET_RATIO} target leaves. Streamlit's default watcher is shown for comparison: it is what "
        "`.streamlit/config.toml` turns off.",
    ]
    return section


def ratio_target(results: dict[str, list[dict[str, Any]]]) -> Target:
    train = {variant: stats(runs, "train_seconds") for variant, runs in results.items()}
    ratio = train["cli"].median / train["dashboard"].median if train["cli"] and train["dashboard"] else None
    target = Target("dashboard/CLI training speed", ratio, TARGET_RATIO, "x")
    server = stats(results["dashboard"], "server_cpu_seconds")
    if target.met is False and server:
        target.why = (
            f"the server used {server.median:.1f} CPU s while the dashboard's run trained "
            f"{train['dashboard'].median:.1f} s: that much was taken from training (see the idle profile)."
        )
    return target


def idle_target(configured: dict[str, Any], section: Section) -> Target:
    """The idle server's CPU against its share of the machine; its GIL profile goes into the section."""
    allowed = IDLE_SHARE_OF_MACHINE * (os.cpu_count() or 1)
    target = Target(
        "idle server CPU, full workspace", configured.get("cores"), allowed, "cores", higher_is_better=False
    )
    if profile := configured.get("gil_profile"):
        title = f"py-spy: where the idle server held the GIL over {PROFILE_SECONDS:.0f} s"
        section.profiles[title] = "\n".join(f"{share:6.1%}  {stack}" for stack, share in profile.items())
        if target.met is False:
            top = "; ".join(f"{share:.0%} in {stack}" for stack, share in list(profile.items())[:2])
            target.why = f"py-spy, samples of the idle server holding the GIL: {top}."
    return target


def idle_params(watcher: str, seconds: float) -> dict[str, Any]:
    profile = PROFILE_SECONDS if watcher == CONFIGURED else 0.0
    return {"watcher": watcher, "seconds": seconds, "profile_seconds": profile}


def comparison_table(
    results: dict[str, list[dict[str, Any]]], settings: dict[str, int], repeats: int
) -> Table:
    rows = []
    for variant, runs in results.items():
        figures = [stats(runs, name) for name in ("train_seconds", "run_seconds", "server_cpu_seconds")]
        precision = ", ".join(sorted({r["precision"] for r in runs if "error" not in r})) or None
        rows.append(
            [
                {"dashboard": "Train page, tab open", "cli": "CLI"}[variant],
                *(figure.median if figure else None for figure in figures),
                figures[0].low if figures[0] else None,
                figures[0].high if figures[0] else None,
                precision,
            ]
        )
    return Table(
        [
            "Started from",
            "Training s (epochs)",
            "Start to completed s",
            "Server CPU s",
            "Training s min",
            "Training s max",
            "Precision",
        ],
        rows,
        f"{RECIPE}, {settings['epochs']} epoch(s) at {settings['image_size']} px; median of {repeats} run(s) "
        "each.",
    )


def idle_table(idle: dict[str, dict[str, Any]], runs_held: int, seconds: float) -> Table:
    rows = [
        [
            watcher,
            result.get("server_cpu_seconds"),
            result.get("cores"),
            result.get("inotify_overflows"),
            result.get("workspace_folders"),
        ]
        for watcher, result in idle.items()
    ]
    return Table(
        [
            "Server",
            f"CPU s over {seconds:.0f} s",
            "Cores busy",
            "Inotify overflows logged",
            "Workspace folders",
        ],
        rows,
        f"One idle tab on the Train page; workspace of {runs_held} runs and its caches.",
    )
