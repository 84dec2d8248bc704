"""The demo's picture: cancels AssetPay accepted in each window of T seconds, against the quota line N.

Pure functions: `window_series` counts, from the sandbox's request log, the requests accepted (and refused with
429) in the trailing window of T seconds at regular steps; `text_chart` draws one series as lines of text for the
terminal. `._plot` draws the same series as an image with matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Final

import attrs

from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import RequestRecord
from assetpay_async.sandbox._observe import max_in_window

__all__ = ["Series", "series_from_requests", "text_chart", "window_series"]

_STEPS_PER_WINDOW: Final = 8
_BLOCKS: Final = " ▁▂▃▄▅▆▇█"


@attrs.frozen
class Series:
    """One run seen by the server: at each ``times[i]``, the requests of the trailing window of ``period``.

    Attributes:
        label: the run's name (``AssetPaySession``, ``AsyncLimiter(60, 0.94)``).
        limit: N, the quota line.
        period: T, the window, in seconds.
        times: the sample times (seconds from the run's first request).
        accepted: requests the server accepted in the window ending at each time.
        refused: requests it refused with 429 in the same window.
        peak: the most accepted in any closed window of ``period`` (exact, as the sandbox's
            ``max_in_window`` counts: the samples may fall between two such windows).
    """

    label: str
    limit: int
    period: float
    times: tuple[float, ...]
    accepted: tuple[int, ...]
    refused: tuple[int, ...]
    peak: int = 0


def _in_window(sorted_times: Sequence[float], end: float, period: float) -> int:
    """How many of ``sorted_times`` fall in ``(end - period, end]``."""
    return bisect.bisect_right(sorted_times, end) - bisect.bisect_right(sorted_times, end - period)


def window_series(
    label: str,
    accepted_at: Iterable[float],
    refused_at: Iterable[float],
    *,
    limit: int,
    period: float,
) -> Series:
    """Sample the trailing-window counts every ``period / 8`` from the first request to the last."""
    accepted, refused = sorted(accepted_at), sorted(refused_at)
    everything = accepted + refused
    if not everything:
        return Series(label, limit, period, (), (), (), 0)
    start, end = min(everything), max(everything)
    step = period / _STEPS_PER_WINDOW
    count = int((end - start) / step) + 2
    times = tuple(start + i * step for i in range(count))
    return Series(
        label,
        limit,
        period,
        tuple(t - start for t in times),
        tuple(_in_window(accepted, t, period) for t in times),
        tuple(_in_window(refused, t, period) for t in times),
        max_in_window(accepted, period),
    )


def series_from_requests(
    label: str, requests: Iterable[RequestRecord], *, limit: int, period: float
) -> Series:
    """`window_series` of the cancel requests of a sandbox's log: counted and answered (accepted), 429s (refused)."""
    cancels = [r for r in requests if r.group is RouteGroup.CANCEL_ITEM]
    return window_series(
        label,
        (r.time for r in cancels if r.counted and not r.rate_limited),
        (r.time for r in cancels if r.rate_limited),
        limit=limit,
        period=period,
    )


def text_chart(series: Series, *, width: int = 60, height: int = 8) -> list[str]:
    """The series as ``height`` rows of bars (at most ``width`` columns), the quota line marked ``N``.

    The scale runs to the larger of N and the peak; the row holding N is drawn with ``─`` where no bar reaches.
    """
    top = max(series.limit, series.peak, 1)
    columns = _resample(series.accepted, width)
    refused = _resample(series.refused, width)
    quota_row = round(series.limit / top * height)
    rows = []
    for level in range(height, 0, -1):
        cells = []
        for value in columns:
            filled = value / top * height
            if filled >= level:
                cells.append("█")
            elif filled > level - 1:
                cells.append(_BLOCKS[round((filled - level + 1) * 8)])
            else:
                cells.append("─" if level == quota_row else " ")
        label = f"N={series.limit:<4}" if level == quota_row else " " * 6
        rows.append(f"{label}│{''.join(cells)}")
    rows.append("      └" + "─" * len(columns))
    span = series.times[-1] if series.times else 0.0
    rows.append(f"       0 s{' ' * max(len(columns) - 12, 1)}{span:.0f} s")
    marks = "".join("x" if r else " " for r in refused)
    if any(refused):
        rows.append(f"429s  │{marks}")
    title = (
        f"{series.label}: accepted per {series.period:.2f} s window, at most {series.peak} "
        f"(quota N = {series.limit})"
    )
    if any(refused):
        title += f"; up to {max(series.refused)} refused with 429 per window (x)"
    return [title, *rows]


def _resample(values: Sequence[int], width: int) -> list[int]:
    """At most ``width`` columns, each the largest value of the samples it covers."""
    if len(values) <= width:
        return list(values)
    per = len(values) / width
    return [
        max(values[int(i * per) : max(int((i + 1) * per), int(i * per) + 1)]) for i in range(width)
    ]
