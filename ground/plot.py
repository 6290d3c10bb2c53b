"""``ground plot``: parameters over time into a PNG, with their limits drawn (matplotlib, Agg backend).

Several parameters share one time axis.  The first unit gets the left y
axis; a second unit gets the right one; further units share the left axis
(the legend names every unit).  Warning limits are dashed lines and alarm
limits dotted lines in the colour of their parameter.  Enumerated
parameters are plotted on their raw codes with the labels as tick names.
Every text that comes from data is escaped so that matplotlib shows it
literally (no mathtext).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from fsw.dictionary import Dictionary

from .archive import Sample
from .archive_query import ParamLocation

__all__ = ["PlotError", "PlotSeries", "plot_series"]


class PlotError(ValueError):
    """Nothing to plot, or a value that cannot be drawn."""


@dataclass
class PlotSeries:
    location: ParamLocation
    samples: Sequence[Sample]


def _literal(text: str) -> str:
    """Text matplotlib draws as is: ``$`` would start mathtext."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _numeric(series: PlotSeries) -> tuple[list[float], list[float], dict[int, str] | None]:
    p = series.location.parameter
    xs: list[float] = []
    ys: list[float] = []
    ticks: dict[int, str] | None = None
    codes: dict[str, int] = {}
    if p.enum is not None:
        codes = dict(p.enum.values)
        ticks = {v: k for k, v in codes.items()}
    for s in series.samples:
        v = s.value
        if s.time is None or v is None:
            continue
        if isinstance(v, list):
            v = v[0] if v else None  # arrays: the first element (documented)
            if v is None:
                continue
        if isinstance(v, str):
            if v in codes:
                v = codes[v]
            elif v.startswith("UNKNOWN(") and v.endswith(")") and v[8:-1].isdigit():
                label = v
                v = int(v[8:-1])
                if ticks is not None:
                    ticks.setdefault(v, label)
            else:
                try:
                    v = float(v)  # "nan", "inf" from the decoder
                except ValueError:
                    continue
        xs.append(float(s.time))
        ys.append(float(v))
    return xs, ys, ticks


def plot_series(series: Sequence[PlotSeries], out: str | Path, dictionary: Dictionary, title: str | None = None,
                width: float = 10.0, height: float = 5.0, dpi: int = 100) -> dict[str, Any]:
    """Draw ``series`` into the PNG ``out``; returns what was drawn (samples and limit lines per parameter)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    prepared = []
    for s in series:
        xs, ys, ticks = _numeric(s)
        prepared.append((s, xs, ys, ticks))
    if not any(xs for _, xs, _, _ in prepared):
        names = ", ".join(s.location.name for s in series)
        raise PlotError(f"no samples of {names} in the time range")
    epoch = dictionary.epoch
    fig, ax_left = plt.subplots(figsize=(width, height), dpi=dpi)
    try:
        axes: dict[str, Any] = {}
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        summary: dict[str, Any] = {}
        handles = []
        for i, (s, xs, ys, ticks) in enumerate(prepared):
            loc = s.location
            unit = loc.unit or ""
            if unit not in axes:
                axes[unit] = ax_left if not axes else (ax_left.twinx() if len(axes) == 1 else ax_left)
                axes[unit].set_ylabel(_literal(unit or "(no unit)"))
            ax = axes[unit]
            color = colors[i % len(colors)]
            times = [epoch.to_datetime(x) for x in xs]
            label = _literal(f"{loc.name} [{unit}]" if unit else loc.name)
            (line,) = ax.plot(times, ys, color=color, marker="." if len(xs) < 200 else None, linewidth=1.2,
                              label=label)
            handles.append(line)
            drawn = []
            lim = loc.parameter.limits
            if lim is not None and ticks is None:
                for value, style, kind in ((lim.warn_low, "--", "warn low"), (lim.warn_high, "--", "warn high"),
                                           (lim.alarm_low, ":", "alarm low"), (lim.alarm_high, ":", "alarm high")):
                    if value is not None:
                        h = ax.axhline(value, color=color, linestyle=style, linewidth=1.0, alpha=0.9,
                                       label=_literal(f"{loc.name} {kind} {value:g}"))
                        handles.append(h)
                        drawn.append((kind, value))
            if ticks:
                ax.set_yticks(sorted(ticks))
                ax.set_yticklabels([_literal(ticks[k]) for k in sorted(ticks)])
            summary[loc.name] = {"samples": len(xs), "limits": drawn, "unit": unit}
        ax_left.set_xlabel("UTC")
        ax_left.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax_left.xaxis.get_major_locator()))
        ax_left.grid(True, alpha=0.3)
        # below the axes, so that it never hides data
        ax_left.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(4, len(series) * 2),
                       fontsize="small", frameon=False)
        names = ", ".join(s.location.name for s in series)
        ax_left.set_title(_literal(title if title is not None else names))
        fig.tight_layout()
        fig.savefig(str(out), format="png")
    finally:
        plt.close(fig)
    return summary
