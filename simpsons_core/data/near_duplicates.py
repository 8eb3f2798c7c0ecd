"""Near-duplicate images: the same picture re-encoded, resized, mirrored, or a near-identical next frame.

Two images are near-duplicates when their 8x8 average hashes are within `MAX_HASH_DISTANCE` bits (in either
orientation) *and* their 16x16 colour thumbnails correlate at `MIN_CORRELATION` or more in that orientation.
Measured on the tutorial's frames (simpsons4-full), why both:
- The hash finds every known twin: each of the 200 test frames is within 3 bits of its training copy (167
  at 0), so 4 bits leaves a bit of margin for re-encoding.
- Cartoon frames are flat, so the hash alone also matches unrelated pictures: of 3,032 training pairs within
  4 bits, 1,004 pair different characters. The colour check removes all but 4 of those and keeps every true
  twin (all correlate above 0.99); on simpsons4-mini it rejects 9 of the 72 test images the hash alone would
  flag, each a different picture on inspection.
Mirrored hashes need no second decode: an average hash's rows are the image's rows, so mirroring the image
reverses the bits of each byte. Pairs are searched with numpy XOR and popcount in chunks, never a Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

HASH_SIZE = 8
THUMB_SIZE = 16
MAX_HASH_DISTANCE = 4
MIN_CORRELATION = 0.8
CHUNK_ROWS = 512  # rows of the distance matrix per numpy step: 512 x 10,000 uint64 is 40 MB

_REVERSED_BYTES = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], dtype=np.uint8)


def fingerprint(image: Image.Image) -> tuple[int, bytes]:
    """(64-bit average hash, 16x16 RGB thumbnail as bytes) of an RGB image."""
    grey = np.asarray(
        image.convert("L").resize((HASH_SIZE, HASH_SIZE), Image.Resampling.BILINEAR), np.float32
    )
    average_hash = int.from_bytes(np.packbits(grey > grey.mean()).tobytes(), "big")
    thumb = image.resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR)
    return average_hash, np.asarray(thumb, dtype=np.uint8).tobytes()


def mirror_hashes(hashes: np.ndarray) -> np.ndarray:
    """The average hashes of the left-right mirrored images."""
    rows = hashes.astype(">u8").view(np.uint8).reshape(-1, HASH_SIZE)
    return _REVERSED_BYTES[rows].reshape(-1).view(">u8").astype(np.uint64)


@dataclass
class Fingerprints:
    """What pair search needs of a list of images; `valid` is False where an image could not be decoded."""

    hashes: np.ndarray  # uint64 [N]
    thumbs: np.ndarray  # uint8 [N, THUMB_SIZE, THUMB_SIZE, 3]
    valid: np.ndarray  # bool [N]
    digests: list[str]  # content hashes; byte-identical files match even when undecodable ("" if unread)

    @classmethod
    def from_parts(cls, parts: Sequence[tuple[int, bytes] | None], digests: Sequence[str]) -> Fingerprints:
        """From (average hash, thumbnail) per image, or None for an image that could not be decoded."""
        valid = np.array([part is not None for part in parts], dtype=bool)
        blank = bytes(THUMB_SIZE * THUMB_SIZE * 3)
        hashes = np.array([part[0] if part else 0 for part in parts], dtype=np.uint64)
        thumbs = np.frombuffer(b"".join(part[1] if part else blank for part in parts), dtype=np.uint8)
        return cls(hashes, thumbs.reshape(len(parts), THUMB_SIZE, THUMB_SIZE, 3), valid, list(digests))

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass
class Pairs:
    """Near-duplicate pairs (a[i], b[j]), ordered by i then j."""

    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray  # hash bits that differ, in the matching orientation (0 for byte-identical files)
    mirrored: np.ndarray  # the pair matches only after a left-right flip
    identical: np.ndarray  # byte-identical files

    def __len__(self) -> int:
        return len(self.i)


def near_duplicate_pairs(a: Fingerprints, b: Fingerprints | None = None) -> tuple[Pairs, np.ndarray]:
    """Near-duplicate pairs between `a` and `b`, or within `a` (i < j) when `b` is None.

    Byte-identical files always pair. Also returns, per image of `a`, whether its hash alone matched an image
    the colour check then rejected and nothing else matched it (so a report can say what was discarded).
    """
    within = b is None
    b = a if b is None else b
    rows_a, rows_b = np.flatnonzero(a.valid), np.flatnonzero(b.valid)  # undecodable images take no part
    hashes_a, hashes_b = a.hashes[rows_a], b.hashes[rows_b]
    mirrored_a = mirror_hashes(hashes_a)
    unit_a, unit_a_mirrored = _unit_thumbs(a.thumbs[rows_a]), _unit_thumbs(a.thumbs[rows_a][:, :, ::-1])
    unit_b = unit_a if within else _unit_thumbs(b.thumbs[rows_b])
    found: dict[tuple[int, int], tuple[int, bool]] = {}
    rejected = np.zeros(len(a), dtype=bool)
    for start in range(0, len(hashes_a), CHUNK_ROWS):
        first_column = start if within else 0  # within one set, only the upper triangle (j > i) is needed
        straight = np.bitwise_count(
            hashes_a[start : start + CHUNK_ROWS, None] ^ hashes_b[None, first_column:]
        )
        flipped = np.bitwise_count(
            mirrored_a[start : start + CHUNK_ROWS, None] ^ hashes_b[None, first_column:]
        )
        i, j = np.nonzero((straight <= MAX_HASH_DISTANCE) | (flipped <= MAX_HASH_DISTANCE))
        straight, flipped = straight[i, j].astype(np.int64), flipped[i, j].astype(np.int64)
        i, j = i + start, j + first_column
        if within:
            keep = j > i
            i, j, straight, flipped = i[keep], j[keep], straight[keep], flipped[keep]
        ok_straight = (straight <= MAX_HASH_DISTANCE) & (_dot(unit_a[i], unit_b[j]) >= MIN_CORRELATION)
        ok_flipped = (flipped <= MAX_HASH_DISTANCE) & (_dot(unit_a_mirrored[i], unit_b[j]) >= MIN_CORRELATION)
        rejected[rows_a[i[~(ok_straight | ok_flipped)]]] = True
        for x, y, d_straight, d_flipped, use_straight, use_flipped in zip(
            rows_a[i].tolist(),
            rows_b[j].tolist(),
            straight.tolist(),
            flipped.tolist(),
            ok_straight.tolist(),
            ok_flipped.tolist(),
            strict=True,
        ):
            if use_straight or use_flipped:
                found[x, y] = (d_straight, False) if use_straight else (d_flipped, True)
    for x, y in _identical_files(a.digests, None if within else b.digests):
        found[x, y] = (0, found.get((x, y), (0, False))[1])
    keys = sorted(found)
    identical = [a.digests[x] == b.digests[y] != "" for x, y in keys]
    pairs = Pairs(
        np.array([x for x, _ in keys], dtype=np.int64),
        np.array([y for _, y in keys], dtype=np.int64),
        np.array([found[key][0] for key in keys], dtype=np.int64),
        np.array([found[key][1] for key in keys], dtype=bool),
        np.array(identical, dtype=bool),
    )
    matched = np.zeros(len(a), dtype=bool)
    matched[pairs.i] = True
    if within:
        matched[pairs.j] = True
    return pairs, rejected & ~matched


def _identical_files(a: Sequence[str], b: Sequence[str] | None) -> list[tuple[int, int]]:
    """Byte-identical pairs: within `a`, each later copy with the first; else each of `a` with `b`'s first."""
    first: dict[str, int] = {}
    for index, digest in enumerate(a if b is None else b):
        first.setdefault(digest, index)
    if b is not None:
        return [(x, first[d]) for x, d in enumerate(a) if d and d in first]
    return [(first[d], x) for x, d in enumerate(a) if d and first[d] != x]


def connected_components(n: int, i: Sequence[int], j: Sequence[int]) -> np.ndarray:
    """Cluster label per item (the smallest index in its cluster), joining every (i[k], j[k]) pair."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(i, j, strict=True):
        rx, ry = find(int(x)), find(int(y))
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return np.array([find(x) for x in range(n)], dtype=np.int64)


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("nk,nk->n", x, y)


def _unit_thumbs(thumbs: np.ndarray) -> np.ndarray:
    """Thumbnails as zero-mean unit vectors, so a dot product is their correlation (0 for a flat image)."""
    flat = thumbs.reshape(len(thumbs), math.prod(thumbs.shape[1:])).astype(np.float32)  # also for 0 rows
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.divide(flat, norms, out=np.zeros_like(flat), where=norms > 1e-3)
