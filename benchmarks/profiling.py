"""cProfile of one call, summarised as the heaviest functions: how a missed target explains itself."""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from typing import Any


def profiled(call: Callable[[], Any], limit: int = 15) -> str:
    """Run `call` under cProfile; its top `limit` functions by cumulative time, as pstats prints them."""
    profiler = cProfile.Profile()
    profiler.runcall(call)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("cumulative").print_stats(limit)
    return text.getvalue().split("\n", 4)[-1].strip()  # without pstats' banner lines
