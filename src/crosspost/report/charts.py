"""The report's charts: matplotlib figures rendered to inline SVG.

Deterministic by construction, so the same figures give byte-identical SVG (tests
compare them, and a published report does not change when it is made again): a
fixed hash salt for element ids, no date or creator metadata, text kept as SVG
text in a fixed font family instead of glyph outlines, the XML prolog, DTD and
RDF metadata removed (they name external addresses; an inline ``<svg>`` in HTML
needs none of them). Only the object-oriented API is used (no pyplot): no global
figure state, no GUI backend.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

#: the palette (colour-blind safe, Okabe–Ito), cycled over series
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
WIDTH, HEIGHT = 7.5, 3.2  # inches


def _style() -> Any:  # rc_context types its keys as literals; these are checked by use
    from cycler import cycler

    return {
        "svg.hashsalt": "crosspost-report",
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=list(PALETTE)),
    }


def _svg(fig: Any, label: str) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None, "Format": None})
    text = out.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    # an accessible image: the caption of the figure names it, the table beside it has the data
    text = text.replace("<svg ", f'<svg role="img" aria-label="{_attr(label)}" ', 1)
    return text.strip()


def _attr(value: str) -> str:
    import html

    return html.escape(value, quote=True)


def _figure(height: float = HEIGHT) -> Any:
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context(_style()):
        return Figure(figsize=(WIDTH, height), layout="constrained")


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    label: str,
    ylabel: str,
) -> str:
    """Vertical bars per label, stacked by series (posts per month by category)."""
    from matplotlib import rc_context

    with rc_context(_style()):
        fig = _figure()
        ax = fig.add_subplot()
        bottom = [0] * len(labels)
        for i, (name, values) in enumerate(series):
            ax.bar(labels, values, bottom=bottom, label=name, color=PALETTE[i % len(PALETTE)])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel(ylabel)
        ax.yaxis.get_major_locator().set_params(integer=True)
        if len(series) > 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(fig, label)


def horizontal_bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    label: str,
    xlabel: str,
    percent: bool = False,
) -> str:
    """One horizontal bar per label (on-time share per account, interactions per account)."""
    from matplotlib import rc_context

    height = max(1.6, 0.35 * len(labels) + 0.9)
    with rc_context(_style()):
        fig = _figure(height)
        ax = fig.add_subplot()
        positions = list(range(len(labels)))
        ax.barh(positions, values, color=PALETTE[0])
        ax.set_yticks(positions, labels=list(labels))
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        if percent:
            from matplotlib.ticker import PercentFormatter

            ax.set_xlim(0, 1)
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        return _svg(fig, label)


def lines(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    label: str,
    ylabel: str,
) -> str:
    """One line per series over the labels (followers per account and month)."""
    from matplotlib import rc_context

    with rc_context(_style()):
        fig = _figure()
        ax = fig.add_subplot()
        x = list(range(len(labels)))
        for i, (name, values) in enumerate(series):
            points = [(xi, v) for xi, v in zip(x, values, strict=True) if v is not None]
            if not points:
                continue
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                markersize=3,
                label=name,
                color=PALETTE[i % len(PALETTE)],
            )
        ax.set_xticks(x, labels=list(labels))
        ax.set_ylabel(ylabel)
        if len(series) > 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(fig, label)
