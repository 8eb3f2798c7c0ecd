"""Where a training step's time goes, read from the TensorFlow profiler's trace (no TensorBoard needed).

The trace (`*.xplane.pb`) holds one event per executed op on TensorFlow's compute threads, named
`scope/.../name:OpType`. Summing their durations by phase (forward, gradient, optimizer update) and op type
answers "why is this step slower than the matrix multiply bound" with measured shares, not guesses.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def op_time_breakdown(logdir: Path, top: int = 12) -> dict[str, Any]:
    """Op time per phase and per (phase, op type), in ms summed over compute threads, and shares of it."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    by_phase: Counter[str] = Counter()
    by_op: Counter[str] = Counter()
    for trace in sorted(Path(logdir).rglob("*.xplane.pb")):
        space = xplane_pb2.XSpace()
        space.ParseFromString(trace.read_bytes())
        for plane in space.planes:
            names = {key: meta.name for key, meta in plane.event_metadata.items()}
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    if ":" not in name or "/" not in name:
                        continue  # executor bookkeeping, not an op
                    phase = op_phase(name)
                    milliseconds = event.duration_ps / 1e9
                    by_phase[phase] += milliseconds
                    by_op[f"{phase} {name.rsplit(':', 1)[1]}"] += milliseconds
    total = sum(by_phase.values()) or 1.0
    return {
        "op_ms_total": total,
        "phase_share": {phase: ms / total for phase, ms in by_phase.most_common()},
        "op_share": {op: ms / total for op, ms in by_op.most_common(top)},
    }


def op_phase(name: str) -> str:
    """forward, gradient or optimizer, from the op's name scope."""
    lowered = name.lower()
    if "gradient_tape" in lowered or "backprop" in lowered:
        return "gradient"
    optimizer_parts = ("/adam/", "/sgd/", "/optimizer/", "assignaddvariableop", ":resourceapply")
    if any(part in lowered for part in optimizer_parts):
        return "optimizer"
    return "forward"


def describe(breakdown: dict[str, Any], limit: int = 6) -> str:
    """One sentence: the phases' shares and the heaviest op types."""
    phases = ", ".join(f"{phase} {share:.0%}" for phase, share in breakdown["phase_share"].items())
    ops = ", ".join(f"{op} {share:.0%}" for op, share in list(breakdown["op_share"].items())[:limit])
    return f"op time by phase: {phases}; heaviest ops: {ops}"
