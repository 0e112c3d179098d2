"""Geometry for the small server-rendered SVG bar chart of daily token use.

Pages draw the bars themselves from these numbers, so the chart needs no JavaScript
library and looks the same in the usage page and the admin report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils.dateformat import format as date_format
from django.utils.translation import gettext as _

from conversations.usage.ledger import DailyTotal

__all__ = ["Bar", "BarChart", "bar_chart"]

# A day with any use gets at least this many pixels, so it stays visible beside a
# day a hundred times bigger.
MIN_VISIBLE_HEIGHT = 2
# A week of data should look like a chart, not like six bricks.
MAX_BAR_WIDTH = 48
NARROW_SLOT = 60


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    total: DailyTotal
    label: str  # shown under the last bar and every `label_step` bars before it
    label_x: float
    label_anchor: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    plot_height: int
    peak: int
    bars: list[Bar]

    @property
    def is_empty(self) -> bool:
        return self.peak == 0


def bar_chart(totals: list[DailyTotal], *, width: int = 720, height: int = 180) -> BarChart:
    """Return bars for `totals`, scaled so the busiest day fills the plot height."""
    plot_height = height - 24  # room for the date labels underneath
    peak = max((total.total_tokens for total in totals), default=0)
    slot = width / max(len(totals), 1)
    bar_width = min(slot - min(4.0, slot * 0.2), MAX_BAR_WIDTH)
    step = label_step(len(totals))
    bars = []
    for index, total in enumerate(totals):
        bar_height = plot_height * total.total_tokens / peak if peak else 0
        if total.total_tokens:
            bar_height = max(bar_height, MIN_VISIBLE_HEIGHT)
        # A narrow last slot cannot hold its centred label: end it at the right edge.
        is_last = index == len(totals) - 1 and slot < NARROW_SLOT
        is_labelled = (len(totals) - 1 - index) % step == 0
        bars.append(
            Bar(
                x=round(index * slot + (slot - bar_width) / 2, 2),
                y=round(plot_height - bar_height, 2),
                width=round(bar_width, 2),
                height=round(bar_height, 2),
                total=total,
                label=date_format(total.day, _("M j")) if is_labelled else "",
                label_x=round((index + 1) * slot if is_last else (index + 0.5) * slot, 2),
                label_anchor="end" if is_last else "middle",
            )
        )
    return BarChart(width=width, height=height, plot_height=plot_height, peak=peak, bars=bars)


def label_step(days: int) -> int:
    """Return how many bars apart the date labels go: every day for a week, else weeks."""
    if days <= 10:
        return 1
    return 7 * math.ceil(days / 70)
