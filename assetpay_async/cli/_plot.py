"""``assetpay demo --plot FILE``: the demo's window chart as an image, drawn with matplotlib (the ``plot`` extra).

The format follows the file's suffix (``.svg``, ``.png``). An SVG is reproducible: no date in it, fixed ids, and
text kept as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ._chart import Series

__all__ = ["plot_series"]


def plot_series(series: Sequence[Series], path: str) -> None:
    """Draw each series (accepted per window, the 429s, the quota line) side by side into ``path``."""
    import matplotlib as mpl  # noqa: PLC0415 - the optional extra, imported only by --plot

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    mpl.rcParams["svg.hashsalt"] = "assetpay-demo"
    mpl.rcParams["svg.fonttype"] = "none"
    figure, axes = plt.subplots(
        1, len(series), figsize=(6.0 * len(series), 3.6), sharey=True, squeeze=False
    )
    top = max(max(s.limit, s.peak) for s in series) * 1.25
    for ax, one in zip(axes[0], series, strict=True):
        ax.fill_between(one.times, one.accepted, step="post", alpha=0.35, color="tab:blue")
        ax.step(one.times, one.accepted, where="post", color="tab:blue", label="accepted")
        if any(one.refused):
            ax.step(one.times, one.refused, where="post", color="tab:red", label="429s")
        ax.axhline(
            one.limit, color="black", linestyle="--", linewidth=1, label=f"quota N = {one.limit}"
        )
        ax.set_title(one.label)
        ax.set_xlabel("seconds")
        ax.set_ylim(0, top)
        ax.legend(loc="lower right", fontsize="small")
    axes[0][0].set_ylabel(f"requests per {series[0].period:.2f} s window")
    figure.tight_layout()
    suffix = Path(path).suffix.lower().lstrip(".") or "svg"
    metadata = {"Date": None} if suffix == "svg" else {}
    figure.savefig(path, format=suffix, metadata=metadata)
    plt.close(figure)
