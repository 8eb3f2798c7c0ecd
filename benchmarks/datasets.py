"""The images every section measures on: the mini set (or generated demo images) and a realistic-size copy.

`SIMPSONS_BENCH_DATA` names the source folder (tutorial layout); it defaults to
`../shared/datasets/simpsons4-mini` beside the repository, and when that is missing the demo dataset is
generated. The mini set's images are shrunk to 128 px while a user's own frames are a few hundred pixels
(median 320x432), so the "realistic" variant re-encodes the same images at 432x320, where decoding costs what
it costs on a user's folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from benchmarks.harness import REPO_ROOT
from simpsons_core.data.images import is_image_name

SOURCE_ENV = "SIMPSONS_BENCH_DATA"
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "datasets" / "simpsons4-mini"
SPLITS = ("simpsons_trainset", "simpson_testset")
REALISTIC_SIZE = (432, 320)  # width x height: the original frames' median size
QUICK_PER_CLASS = {"simpsons_trainset": 40, "simpson_testset": 5}  # batch 64 still gets 2 steps an epoch

# Copies of one frame for the scan set: mirrored or flipped, so copies are new pictures, not byte duplicates.
TRANSFORMS: tuple[Callable[[Image.Image], Image.Image], ...] = (
    lambda image: image,
    lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    lambda image: image.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    lambda image: image.transpose(Image.Transpose.ROTATE_180),
)


@dataclass(frozen=True)
class BenchData:
    """Where the measured images are.

    Attributes:
        origin: a sentence saying which images these are.
        small: the source images as shipped (tutorial layout).
        realistic: the same images re-encoded at `REALISTIC_SIZE` (tutorial layout).
    """

    origin: str
    small: Path
    realistic: Path

    def variants(self) -> dict[str, Path]:
        return {"small": self.small, "realistic": self.realistic}


def source_folder() -> Path:
    return Path(os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE).expanduser().resolve()


def image_files(root: Path) -> list[Path]:
    """Image files of both splits, relative to `root`, in a stable order."""
    return sorted(
        path.relative_to(root)
        for split in SPLITS
        if (root / split).is_dir()
        for path in (root / split).rglob("*")
        if path.is_file() and is_image_name(path)
    )


def prepare_data(workdir: Path, quick: bool) -> BenchData:
    """The source images (a small subset in quick mode) and their realistic-size copy under `workdir`."""
    source = source_folder()
    if (source / SPLITS[0]).is_dir():
        origin = f"{source.name} ({source})"
    else:
        from simpsons_core.data.demo import generate_demo_dataset

        per_class = (QUICK_PER_CLASS[SPLITS[0]], QUICK_PER_CLASS[SPLITS[1]]) if quick else (400, 50)
        source = generate_demo_dataset(
            workdir / "demo", train_per_class=per_class[0], test_per_class=per_class[1], seed=0, size=128
        )
        origin = f"generated demo images ({source} not found; set {SOURCE_ENV})"
    if quick:
        source = copy_subset(source, workdir / "small")
        origin += f", quick subset of {QUICK_PER_CLASS[SPLITS[0]]} training images per class"
    realistic = reencode(source, workdir / "realistic", REALISTIC_SIZE)
    return BenchData(origin=origin, small=source, realistic=realistic)


def copy_subset(source: Path, out: Path) -> Path:
    """The first few images of every class folder (see `QUICK_PER_CLASS`), copied to `out`."""
    taken: dict[Path, int] = {}
    for relative in image_files(source):
        folder = relative.parent
        if taken.get(folder, 0) < QUICK_PER_CLASS[relative.parts[0]]:
            taken[folder] = taken.get(folder, 0) + 1
            (out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, out / relative)
    return out


def reencode(source: Path, out: Path, size: tuple[int, int]) -> Path:
    """Every image of `source` resized to `size` and saved as JPEG under the same relative path in `out`."""
    jobs = [
        (source / relative, out / relative.with_suffix(".jpg"), size, 0) for relative in image_files(source)
    ]
    _encode_all(jobs)
    return out


def make_scan_set(source: Path, out: Path, count: int, size: tuple[int, int]) -> Path:
    """`count` images in the tutorial layout made of `source`'s images, mirrored or flipped."""
    files = image_files(source)
    jobs = []
    for index in range(count):
        relative = files[index % len(files)]
        variant = index // len(files) % len(TRANSFORMS)
        target = out / relative.parent / f"{relative.stem}_copy{index // len(files)}.jpg"
        jobs.append((source / relative, target, size, variant))
    _encode_all(jobs)
    return out


def _encode_all(jobs: Sequence[tuple[Path, Path, tuple[int, int], int]]) -> None:
    for folder in {target.parent for _, target, _, _ in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_encode_one, jobs, chunksize=64))


def _encode_one(job: tuple[Path, Path, tuple[int, int], int]) -> None:
    source, target, size, variant = job
    with Image.open(source) as image:
        resized = TRANSFORMS[variant](image.convert("RGB").resize(size, Image.Resampling.BICUBIC))
    resized.save(target, "JPEG", quality=90)
