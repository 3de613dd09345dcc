"""``eval --report DIR``: an HTML page and PNG plots of one evaluation.

matplotlib is imported inside ``write_report`` only (object-oriented API, Agg canvas,
no pyplot state), so nothing else in the package, the server least of all, loads it.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from router.extras import require
from router.quality.evaluate import Evaluation, SweepPoint
from router.quality.tuning import Objective, choose
from router.routing.intents import UNKNOWN

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["write_report"]

SCORES_PNG = "scores.png"
SWEEP_PNG = "sweep.png"
CONFUSION_PNG = "confusion.png"
MAX_CONFUSION_LABELS = 12

_GREEN, _ORANGE, _GREY, _BLUE, _RED = "#2e7d32", "#ef6c00", "#607d8b", "#1565c0", "#c62828"


def write_report(evaluation: Evaluation, directory: Path | str) -> Path:
    """Write ``index.html`` and its PNG plots into ``directory``; return the page."""
    require("eval", "eval --report", "matplotlib")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    curve = evaluation.curve()
    plots: list[tuple[str, str]] = []
    _save(_scores_figure(evaluation), out / SCORES_PNG)
    plots.append((SCORES_PNG, "Best-candidate scores by outcome, with the default threshold"))
    _save(_sweep_figure(evaluation, curve), out / SWEEP_PNG)
    plots.append((SWEEP_PNG, "Metrics if the default threshold were moved"))
    labels = _most_confused(evaluation)
    if labels:
        _save(_confusion_figure(evaluation, labels), out / CONFUSION_PNG)
        plots.append((CONFUSION_PNG, "Confusions among the most-confused labels"))
    page = out / "index.html"
    page.write_text(_page(evaluation, curve, plots), encoding="utf-8")
    return page


# -------------------------------------------------------------------------- figures


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", facecolor="white")


def _scores_figure(evaluation: Evaluation) -> Figure:
    import numpy as np

    groups = {
        "in scope, right candidate": [
            o.score for o in evaluation.outcomes if o.gold != UNKNOWN and o.candidate == o.gold
        ],
        "in scope, wrong candidate": [
            o.score for o in evaluation.outcomes if o.gold not in (UNKNOWN, o.candidate)
        ],
        "out of scope": [o.score for o in evaluation.outcomes if o.gold == UNKNOWN],
    }
    scores = [o.score for o in evaluation.outcomes]
    lo, hi = min(scores), max(scores)
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 31)
    figure = _figure(8, 3.6)
    ax = figure.add_subplot()
    for (label, values), color in zip(groups.items(), (_GREEN, _ORANGE, _GREY), strict=True):
        if values:
            ax.hist(
                values,
                bins=bins.tolist(),
                alpha=0.55,
                color=color,
                label=f"{label} ({len(values)})",
                edgecolor="white",
                linewidth=0.5,
            )
    ax.axvline(evaluation.default_threshold, color=_RED, linestyle="--", linewidth=1.5)
    ax.annotate(
        f"threshold {evaluation.default_threshold:g}",
        xy=(evaluation.default_threshold, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -12),
        textcoords="offset points",
        color=_RED,
        fontsize=9,
    )
    ax.set_xlabel(f"best candidate's score ({evaluation.scoring or 'scoring'})")
    ax.set_ylabel("rows")
    ax.legend(frameon=False, fontsize=9)
    _tidy(ax)
    return figure


def _sweep_figure(evaluation: Evaluation, curve: list[SweepPoint]) -> Figure:
    figure = _figure(9, 3.8)
    ax = figure.add_subplot()
    xs = [p.threshold for p in curve]
    series = (
        ("accuracy", [p.accuracy for p in curve], "#212121"),
        ("in-scope accuracy", [p.in_scope_accuracy for p in curve], _GREEN),
        ("unknown recall", [p.unknown_recall for p in curve], _BLUE),
        ("unknown precision", [p.unknown_precision for p in curve], _ORANGE),
    )
    for label, ys, color in series:
        values = [float("nan") if y is None else y for y in ys]
        ax.plot(xs, values, label=label, color=color, linewidth=1.8)
    ax.axvline(evaluation.default_threshold, color=_RED, linestyle="--", linewidth=1.2)
    best = curve[choose(curve, Objective.ACCURACY)]
    ax.plot([best.threshold], [best.accuracy], "o", color="#212121", markersize=5)
    ax.annotate(
        f"best accuracy {best.accuracy:.3f}\nat {best.threshold:g}",
        xy=(best.threshold, best.accuracy),
        xytext=(0, -48),
        textcoords="offset points",
        ha="center",
        fontsize=9,
        arrowprops={"arrowstyle": "-", "color": "#9e9e9e", "linewidth": 0.8},
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "#d0d7de"},
    )
    ax.set_xlabel("default threshold")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _tidy(ax)
    return figure


def _most_confused(evaluation: Evaluation) -> list[str]:
    involvement: Counter[str] = Counter()
    for o in evaluation.errors:
        involvement[o.gold] += 1
        involvement[o.predicted] += 1
    ranked = [label for label, _ in involvement.most_common(MAX_CONFUSION_LABELS)]
    return sorted(ranked, key=lambda label: (label == UNKNOWN, label))


def _confusion_figure(evaluation: Evaluation, labels: list[str]) -> Figure:
    import numpy as np

    position = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for o in evaluation.outcomes:
        if o.gold in position and o.predicted in position:
            counts[position[o.gold], position[o.predicted]] += 1
    side = 2.0 + 0.36 * len(labels)
    figure = _figure(side + 1.3, side)
    ax = figure.add_subplot()
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    errors_only = counts.copy()
    np.fill_diagonal(errors_only, 0)
    top = max(int(errors_only.max()), 1)
    image = ax.imshow(errors_only, cmap="Reds", vmin=0, vmax=top * 1.4)
    for i in range(len(labels)):
        # Correct answers sit on the diagonal, drawn apart from the errors' colour scale.
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, facecolor="#dafbe1", edgecolor="none"))
        for j in range(len(labels)):
            if counts[i, j]:
                dark = i != j and errors_only[i, j] > top * 0.7
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else (_GREEN if i == j else "black"),
                )
    ax.set_xticks([x - 0.5 for x in range(1, len(labels))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(labels))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    bar = figure.colorbar(image, ax=ax, shrink=0.7, label="wrong answers")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    return figure


def _tidy(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(alpha=0.25)


# ---------------------------------------------------------------------------- page

_CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
.meta { color: var(--muted); margin: 0 0 18px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--bg);
       padding: 1px 4px; border-radius: 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
        background: var(--bg); }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; }
.card .d { color: var(--muted); font-size: 11px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--bg); font-weight: 600; position: sticky; top: 0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:hover td { background: #fafbfc; }
.bad { background: #ffebe9; } .mid { background: #fff8c5; } .good { background: #dafbe1; }
.unknown { color: var(--muted); font-style: italic; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 12px; }
.text { max-width: 420px; }
table.narrow { width: auto; min-width: 50%; }
"""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "&ndash;" if value is None else f"{value:.{digits}f}"


def _grade(value: float | None) -> str:
    if value is None:
        return ""
    return "good" if value >= 0.9 else "mid" if value >= 0.75 else "bad"


def _label(name: str) -> str:
    escaped = html.escape(name)
    return f'<span class="unknown">{escaped}</span>' if name == UNKNOWN else escaped


def _page(evaluation: Evaluation, curve: list[SweepPoint], plots: list[tuple[str, str]]) -> str:
    e, m = evaluation, evaluation.metrics
    best = curve[choose(curve, Objective.ACCURACY)]
    n_in = e.in_scope_rows
    cards = [
        ("accuracy", m.accuracy, "every row; unknown is a label"),
        ("in-scope accuracy", m.in_scope_accuracy, f"{n_in} rows with an intent"),
        ("in-scope top-1", m.in_scope_top1, "best candidate, no threshold"),
        ("in-scope precision", m.in_scope_precision, "answers naming an intent"),
        ("unknown recall", m.unknown_recall, f"{e.rows - n_in} out-of-scope rows"),
        ("unknown precision", m.unknown_precision, "unknown answers"),
        ("unknown F1", m.unknown_f1, ""),
        ("macro F1", m.macro_f1, "intents + unknown"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="k">{html.escape(k)}</div>'
        f'<div class="v">{_fmt(v)}</div><div class="d">{html.escape(d)}</div></div>'
        for k, v, d in cards
    )
    per_intent = "".join(
        f"<tr><td>{_label(s.name)}</td>"
        f'<td class="n {_grade(s.precision)}">{_fmt(s.precision)}</td>'
        f'<td class="n {_grade(s.recall)}">{_fmt(s.recall)}</td>'
        f'<td class="n {_grade(s.f1)}">{_fmt(s.f1)}</td>'
        f'<td class="n">{s.support}</td><td class="n">{s.predicted}</td></tr>'
        for s in sorted(e.per_intent, key=lambda s: (s.f1 is None, s.f1 or 0.0, s.name))
    )
    pairs = "".join(
        f'<tr><td class="n">{p.count}</td><td>{_label(p.gold)}</td>'
        f"<td>{_label(p.predicted)}</td></tr>"
        for p in e.confused_pairs
    )
    figures = "".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption in plots
    )
    errors = "".join(
        f'<tr><td class="n">{o.line}</td><td class="text">{html.escape(o.text)}</td>'
        f"<td>{_label(o.gold)}</td><td>{_label(o.predicted)}</td>"
        f"<td>{_label(o.candidate)}</td>"
        f'<td class="n">{o.score:.3f} {"&ge;" if o.score >= o.threshold else "&lt;"} '
        f"{o.threshold:g}</td>"
        f'<td class="text">{html.escape(o.matched_example)}</td></tr>'
        for o in e.errors
    )
    own = f", {len(e.own_thresholds)} intents with their own threshold" if e.own_thresholds else ""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"Evaluation of {Path(e.data).name or 'data'}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><main>
<h1>{html.escape(title)}</h1>
<p class="meta"><code>{html.escape(e.data)}</code> · {e.rows} rows ({n_in} in scope,
{e.rows - n_in} out of scope) · revision <code>{html.escape(e.revision)}</code> ·
scoring <code>{html.escape(e.scoring)}</code> · default threshold
<code>{e.default_threshold:g}</code>{own} · {generated}</p>
<div class="cards">{card_html}</div>
<p class="meta">On this data the best accuracy, {best.accuracy:.3f}, is reached with a
default threshold of {best.threshold:g} (the middle of the best range; now
{e.default_threshold:g}). Choose thresholds on validation data, never on test data:
<code>intent-router tune</code>.</p>
<h2>Plots</h2>
{figures}
<h2>Per label</h2>
<table><thead><tr><th>label</th><th class="n">precision</th><th class="n">recall</th>
<th class="n">F1</th><th class="n">support</th><th class="n">predicted</th></tr></thead>
<tbody>{per_intent}</tbody></table>
<h2>Most confused (gold → predicted)</h2>
<table class="narrow"><thead><tr><th class="n">rows</th><th>gold</th><th>predicted</th></tr></thead>
<tbody>{pairs or '<tr><td colspan="3">no errors</td></tr>'}</tbody></table>
<h2>Errors ({len(e.errors)})</h2>
<table><thead><tr><th class="n">line</th><th>text</th><th>gold</th><th>predicted</th>
<th>candidate</th><th class="n">score vs threshold</th><th>closest example of the candidate</th>
</tr></thead><tbody>{errors or '<tr><td colspan="7">no errors</td></tr>'}</tbody></table>
</main></body></html>
"""
