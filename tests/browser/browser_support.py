"""What the browser tests share besides fixtures: the running dashboard's address and taking screenshots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@dataclass(frozen=True)
class Dashboard:
    url: str
    home: Path  # SIMPSONS_HOME of the server
    data: Path  # SIMPSONS_DATA of the server


def screenshot(tab, name: str) -> Path:
    """Save the visible page as screenshots/<name>.png once Streamlit has finished running it, its charts are
    drawn and its images loaded."""
    tab.wait_for_function(
        """() => !document.querySelector(
                    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"],'
                    + '[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]')
              && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                    .every(chart => chart.querySelector('.main-svg'))
              && [...document.querySelectorAll('[data-testid="stImage"] img')]
                    .every(img => img.complete && img.naturalWidth > 0)""",
        timeout=120_000,
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path))
    return path
