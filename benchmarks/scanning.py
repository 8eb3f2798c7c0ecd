"""Section 5, scanning: a cold scan (empty per-file cache) and a warm one (cache filled) of 6,000 images.

The images are the source set's frames at the realistic size (432x320), repeated under new names and mirrored
or flipped in each repeat, so every file is a new picture. Each scan runs in a fresh process with its own
SIMPSONS_HOME; the warm scan reuses the cold scan's workspace. The operating system's file cache is warm for
both (the files were just written), so "cold" means the scan's own cache is empty.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.context import Context
from benchmarks.datasets import REALISTIC_SIZE, make_scan_set
from benchmarks.harness import Job, brief, errors, run_job, stats
from benchmarks.profiling import profiled
from benchmarks.report import Section, Table, Target

IMAGES, QUICK_IMAGES = 6000, 200
TARGET_COLD_SECONDS, TARGET_WARM_SECONDS = 20.0, 2.0


def measure_scan(root: str, profile: bool = False) -> dict[str, Any]:
    """Seconds of one `scan_dataset` call; with `profile`, the cProfile of such a call instead."""
    from simpsons_core.data.scan import scan_dataset

    if profile:
        return {"profile": profiled(lambda: scan_dataset(root))}
    started = time.perf_counter()
    report = scan_dataset(root)
    return {"scan_seconds": time.perf_counter() - started, "files": report.files}


def run(ctx: Context) -> Section:
    count = QUICK_IMAGES if ctx.quick else IMAGES
    section = Section("scanning", f"Scanning {count:,} images of {REALISTIC_SIZE[0]}x{REALISTIC_SIZE[1]}")
    ctx.log(f"making {count} images to scan ...")
    root = make_scan_set(ctx.data.small, ctx.workdir / "scan-set", count, REALISTIC_SIZE)
    results: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    for repeat in range(ctx.repeats):
        home = {"SIMPSONS_HOME": str(ctx.workdir / f"scan-home-{repeat}")}
        for kind in ("cold", "warm"):  # warm needs the cold scan's cache: this order cannot alternate
            result = run_job(Job(kind, "scan", {"root": str(root)}, home))
            results[kind].append(result)
            ctx.log(f"  [{repeat + 1}/{ctx.repeats}] {kind}: {brief(result)}")
    section.raw = results
    section.error = "; ".join(e for runs in results.values() for e in errors(runs))
    rows = []
    for kind, runs in results.items():
        scan, process = stats(runs, "scan_seconds"), stats(runs, "process_seconds")
        rss = stats(runs, "peak_rss_mb")
        rows.append(
            [
                kind,
                *(s.median if s else None for s in (scan, process, rss)),
                count / scan.median if scan else None,
            ]
        )
    section.tables.append(
        Table(["Scan", "scan_dataset s", "Whole process s", "Peak RSS MB", "Images/s"], rows)
    )
    cold, warm = stats(results["cold"], "scan_seconds"), stats(results["warm"], "scan_seconds")
    section.targets = [
        Target(
            f"cold scan of {count:,} images", cold.median if cold else None, TARGET_COLD_SECONDS, "s", False
        ),
        Target(
            f"warm scan of {count:,} images", warm.median if warm else None, TARGET_WARM_SECONDS, "s", False
        ),
    ]
    for target, kind in zip(section.targets, ("cold", "warm"), strict=True):
        if target.met is False:
            home = {"SIMPSONS_HOME": str(ctx.workdir / "scan-home-profile")}
            if kind == "warm":
                run_job(Job("cold", "scan", {"root": str(root)}, home))
            result = run_job(Job(kind, "scan", {"root": str(root), "profile": True}, home))
            section.profiles[f"{kind} scan (cProfile, cumulative)"] = result.get(
                "profile", result.get("error")
            )
            target.why = f"see the cProfile of a {kind} scan below (the heaviest calls inside scan_dataset)."
    section.notes = [
        "scan_dataset s is the call alone; whole process s adds starting Python and importing, as a CLI user "
        "waits for `python -m simpsons_core scan`.",
    ]
    return section
