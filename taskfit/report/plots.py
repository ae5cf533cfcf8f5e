"""A finished run -> PNG plots in `<run>/plots`. Figures are made as `matplotlib.figure.Figure`
objects, never through pyplot, so drawing them leaves the caller's matplotlib backend and
figures alone (PNG goes through Agg whatever the backend).

Learning curves (training vs validation, the kept epoch marked, a learning-rate schedule and
loss switches shown), and for each head on the test split: a confusion matrix with class names
(a binary head cut at its threshold), a reliability diagram, ROC and precision-recall curves
(binary), predicted vs actual and a residual histogram in the
label's own units (regression). A run with several heads gets one folder of these per head,
and with mixture-of-experts sharing the heads' gate weights per expert (gates.png).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from taskfit.feed.classes import (
    class_ids,
    confusion_counts,
    cumulative_counts,
    predicted_ids,
    probabilities,
)
from taskfit.feed.confidence import reliability, temperature_probabilities
from taskfit.plan.outputs import SHARING_PENALTY, gate_logged, head_logged, logged
from taskfit.plan.plan import Head, Plan
from taskfit.runfolder.files import own_folder, write_bytes
from taskfit.runfolder.layout import TEXT_COLUMN, RunFolder

LEARNING_RATE = "learning_rate"  # history.csv column when a schedule or a plateau cut sets the rate
ANNOTATE_UP_TO = 20  # classes: above this the confusion matrix is colour only, no counts


@dataclass(frozen=True)
class TestResult:
    """One head on held-out rows: its targets (as the loss takes them) and the model's output;
    `rows` names them in the titles."""

    head: Head
    y: np.ndarray
    output: np.ndarray
    rows: str = "test split"  # or "out-of-fold": a bagged run's rows by the member held out
    temperature: float | None = None  # the output is calibrated at it (training.calibration)
    threshold: float | None = None  # a binary head's cut (data.threshold); None: the argmax


def write_plots(
    run_dir: Path,
    plan: Plan,
    history: dict[str, list[float]],
    active_losses: dict[str, list[str]],
    best_epoch: int | None,
    tests: Sequence[TestResult],
) -> list[Path]:
    """Every plot of the run; returns the files written. `best_epoch` (1-based) is the epoch
    whose weights were kept (None: the last one)."""
    folder = RunFolder(run_dir).plots
    kept = best_epoch or len(next(iter(history.values()), []))
    written = []
    shared = ["loss", LEARNING_RATE]
    if plan.learned_weights:  # learned weights change; fixed ones are flat lines
        shared += [logged(head.name, "weight", multi=True) for head in plan.heads]
    for test in tests:
        head = test.head
        where = folder / head.name if plan.multi else folder
        names = head_logged(head, plan.multi)
        if not plan.multi:
            names += [LEARNING_RATE]
        switches = active_losses.get(logged(head.name, TEXT_COLUMN, multi=plan.multi))
        written.append(
            _save(
                learning_curves(history, names, kept, switches),
                where / "learning_curves.png",
                run_dir,
            )
        )
        written += [
            _save(figure, where / name, run_dir) for name, figure in test_figures(test).items()
        ]
    if plan.multi:
        shared.append(SHARING_PENALTY)  # soft sharing's penalty (absent elsewhere: skipped)
        written.append(
            _save(
                learning_curves(history, shared, kept, None),
                folder / "learning_curves.png",
                run_dir,
            )
        )
    if plan.sharing.name == "mmoe" and gate_logged(plan.heads[0].name, 1) in history:
        written.append(_save(gate_weights(history, plan, kept), folder / "gates.png", run_dir))
    return written


def gate_weights(history: dict[str, list[float]], plan: Plan, kept: int) -> Any:
    """mmoe: each head's mean gate weight per expert at the kept epoch (a table of heads by
    experts, which head uses which expert), and each head's weights over the epochs."""
    heads = [head.name for head in plan.heads]
    experts = int(plan.sharing.params["experts"])
    table = np.array(
        [[history[gate_logged(h, k)][kept - 1] for k in range(1, experts + 1)] for h in heads]
    )
    figure = Figure(figsize=(4.6 * (1 + len(heads)), 3.6), layout="constrained")
    axes = figure.subplots(1, 1 + len(heads), squeeze=False)[0]
    image = axes[0].imshow(table, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes[0], shrink=0.8)
    axes[0].set_xticks(range(experts), [str(k) for k in range(1, experts + 1)])
    axes[0].set_yticks(range(len(heads)), heads)
    axes[0].set_xlabel("expert")
    axes[0].set_title(f"mean gate weight, epoch {kept}")
    for (i, j), weight in np.ndenumerate(table):
        color = text_color(tuple(image.cmap(image.norm(weight))))
        axes[0].text(j, i, f"{weight:.2f}", ha="center", va="center", color=color, fontsize=9)
    for ax, head in zip(axes[1:], heads, strict=True):
        for k in range(1, experts + 1):
            column = history[gate_logged(head, k)]
            ax.plot(np.arange(1, len(column) + 1), column, label=f"expert {k}")
        ax.axvline(kept, color="0.4", linewidth=1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{head}: gate weights")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    return figure


def test_figures(test: TestResult) -> dict[str, Any]:
    """File name -> figure, for what the head predicts."""
    head = test.head
    if head.task == "regression":
        actual, predicted = test.y.reshape(-1), test.output[:, 0]
        label = head.labels.columns[0]
        return {
            "predicted_vs_actual.png": predicted_vs_actual(actual, predicted, label, test.rows),
            "residuals.png": residual_histogram(actual - predicted, label, test.rows),
        }
    classes = list(head.labels.classes)
    truth, scores = class_ids(test.y), probabilities(test.output)
    predicted = predicted_ids(scores, test.threshold)
    figures = {"confusion.png": confusion_matrix(truth, predicted, classes, test.rows)}
    if test.threshold is not None:
        figures["confusion.png"].axes[0].set_xlabel(f"predicted (cut at {test.threshold:.3g})")
    if head.task == "binary":
        figures["roc_pr.png"] = roc_and_pr(truth, scores[:, 1], classes[1], test.rows)
    # the output as fitted: the saved temperature undone (softmax(log q * T) gives p back)
    fitted = temperature_probabilities(scores, 1 / test.temperature) if test.temperature else None
    figures["reliability.png"] = reliability_diagram(truth, scores, fitted, test.rows)
    return figures


def learning_curves(
    history: dict[str, list[float]],
    names: list[str],
    kept: int,
    switches: list[str] | None,
) -> Any:
    """One panel per logged quantity: training solid, validation dashed; the kept epoch and any
    loss switch drawn as vertical lines."""
    names = [n for n in names if n in history]
    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    figure = Figure(figsize=(4.6 * cols, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        epochs = np.arange(1, len(history[name]) + 1)
        validated = f"val_{name}" in history
        ax.plot(epochs, history[name], label="training" if validated else None)
        if validated:
            ax.plot(epochs, history[f"val_{name}"], "--", label="validation")
        ax.axvline(kept, color="0.4", linewidth=1, label=f"kept (epoch {kept})")
        for epoch, loss in _switches(switches):
            ax.axvline(epoch, color="tab:red", linestyle=":", linewidth=1.2)
            ax.annotate(
                f"loss → {loss}", (epoch, 0.03), xycoords=("data", "axes fraction"), fontsize=8,
                color="tab:red", rotation=90, va="bottom", ha="right",
            )  # fmt: skip
        if name == LEARNING_RATE or name.endswith("loss"):
            _log_scale_if_wide(ax, history[name])
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    return figure


def _switches(active: list[str] | None) -> list[tuple[int, str]]:
    """(first epoch, loss) for each change of the loss in force; none when it never changes."""
    if not active:
        return []
    pairs = enumerate(itertools.pairwise(active), start=2)  # (epoch of `now`, its pair)
    return [(epoch, now) for epoch, (was, now) in pairs if now != was]


def _log_scale_if_wide(ax: Any, values: list[float]) -> None:
    """Losses spanning two orders of magnitude read better on a log axis."""
    positive = [v for v in values if v > 0]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > 100:
        ax.set_yscale("log")


def confusion_matrix(
    truth: np.ndarray, predicted: np.ndarray, classes: list[str], rows: str = "test split"
) -> Any:
    k = len(classes)
    counts = confusion_counts(truth, predicted, k)
    side = min(max(4.5, 0.45 * k + 2.5), 14)
    figure = Figure(figsize=(side + 1, side), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    slanted = k > 4 and max(len(c) for c in classes) > 3  # long names would overlap
    ax.set_xticks(
        range(k), classes, rotation=45 if slanted else 0, ha="right" if slanted else "center"
    )
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{rows}: {counts.sum()} rows, accuracy {accuracy:.3f}")
    if k <= ANNOTATE_UP_TO:
        for (i, j), n in np.ndenumerate(counts):
            color = text_color(tuple(image.cmap(image.norm(n))))
            ax.text(j, i, str(n), ha="center", va="center", color=color, fontsize=9)
    return figure


def relative_luminance(rgba: Sequence[float]) -> float:
    """WCAG 2's relative luminance of an sRGB colour (0 black, 1 white)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def text_color(background: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with the cell: a threshold on the count (half
    the largest) put white on light blue; WCAG's contrast ratios cross at luminance 0.179, where
    both are 4.58:1."""
    return "black" if relative_luminance(background) > 0.179 else "white"


def roc_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    tp, fp = cumulative_counts(truth, score)
    return np.r_[0, fp / max(fp[-1], 1)], np.r_[0, tp / max(tp[-1], 1)]


def precision_recall_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at every distinct threshold, highest threshold first."""
    tp, fp = cumulative_counts(truth, score)
    return tp / max(tp[-1], 1), tp / (tp + fp)


def roc_and_pr(
    truth: np.ndarray, score: np.ndarray, positive: str, rows: str = "test split"
) -> Any:
    figure = Figure(figsize=(10, 4.4), layout="constrained")
    roc, pr = figure.subplots(1, 2)
    fpr, tpr = roc_curve(truth, score)
    roc.plot(fpr, tpr, label=f"AUC {np.trapezoid(tpr, fpr):.3f}")
    roc.plot([0, 1], [0, 1], ":", color="0.5", label="chance")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    recall, precision = precision_recall_curve(truth, score)
    # average precision: precision at each threshold weighted by the recall it adds
    average = float(np.sum(np.diff(np.r_[0, recall]) * precision))
    pr.step(recall, precision, where="post", label=f"average precision {average:.3f}")
    pr.axhline(truth.mean(), linestyle=":", color="0.5", label=f"share of {positive}")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.02))
    for ax in (roc, pr):
        ax.legend(fontsize=8, loc="lower right" if ax is roc else "lower left")
    figure.suptitle(f"positive class: {positive} ({rows}, {len(truth)} rows)")
    return figure


def predicted_vs_actual(
    actual: np.ndarray, predicted: np.ndarray, label: str, rows: str = "test split"
) -> Any:
    figure = Figure(figsize=(5.2, 5), layout="constrained")
    ax = figure.subplots()
    ax.scatter(actual, predicted, s=12, alpha=0.6)
    low, high = min(actual.min(), predicted.min()), max(actual.max(), predicted.max())
    ax.plot([low, high], [low, high], ":", color="0.4", label="predicted = actual")
    ax.set(xlabel=f"actual {label}", ylabel=f"predicted {label}")
    rmse = float(np.sqrt(np.mean((actual - predicted) ** 2)))
    ax.set_title(f"{rows}: {len(actual)} rows, RMSE {rmse:.4g}")
    ax.legend(fontsize=8)
    return figure


def residual_histogram(residuals: np.ndarray, label: str, rows: str = "test split") -> Any:
    figure = Figure(figsize=(5.6, 4), layout="constrained")
    ax = figure.subplots()
    ax.hist(residuals, bins=min(40, max(10, len(residuals) // 5)))
    ax.axvline(0, color="0.3", linewidth=1)
    ax.set(xlabel=f"actual - predicted {label}", ylabel="rows")
    ax.set_title(f"{rows} residuals: mean {residuals.mean():.3g}, std {residuals.std():.3g}")
    return figure


def reliability_diagram(
    truth: np.ndarray, saved: np.ndarray, fitted: np.ndarray | None, rows: str = "test split"
) -> Any:
    """How often the predicted class is right against how sure the model was of it (rows
    binned by confidence, 15 bins; on the diagonal a probability means what it says), for the
    saved model and, when calibration changed it, the model as fitted. Bars: rows per bin."""
    figure = Figure(figsize=(5.4, 6), layout="constrained")
    curve, counts = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    curve.plot([0, 1], [0, 1], ":", color="0.5", label="calibrated perfectly")
    shown = [("as fitted", fitted, "tab:orange"), ("saved model", saved, "tab:blue")]
    for name, p, color in shown:
        if p is None:
            continue
        bins = reliability(p, truth)
        label = f"{name}: ECE {bins.error:.4f}" if fitted is not None else f"ECE {bins.error:.4f}"
        curve.plot(bins.confidence, bins.accuracy, "o-", color=color, markersize=4, label=label)
        if p is saved:
            counts.bar(bins.confidence, bins.rows, width=1 / 20, color=color)
    curve.set(ylabel="share predicted right", xlim=(0, 1.01), ylim=(0, 1.01))
    curve.set_title(f"reliability ({rows}, {len(truth)} rows)")
    curve.legend(fontsize=8, loc="upper left")
    counts.set(xlabel="confidence in the predicted class", ylabel="rows")
    return figure


def _save(figure: Any, path: Path, run_dir: Path) -> Path:
    """The PNG written whole (temp file, then rename), in a folder of the run's own."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    own_folder(path.parent, run_dir)
    write_bytes(path, buffer.getvalue())
    return path


def importance_bars(ranked: Sequence[tuple[str, float, float]], score: str, rows: str) -> Any:
    """Permutation importance (taskfit explain): each column's mean increase of the score, the
    most important on top, its spread over the repeats as an error bar."""
    shown = list(ranked)[:40]
    figure = Figure(figsize=(6.4, 1.2 + 0.28 * len(shown)), layout="constrained")
    ax = figure.subplots()
    at = np.arange(len(shown))[::-1]
    ax.barh(at, [m for _, m, _ in shown], xerr=[s for _, _, s in shown], color="C0", capsize=2)
    ax.set_yticks(at, [c for c, _, _ in shown], fontsize=8)
    ax.axvline(0, color="0.3", linewidth=1)
    ax.set(xlabel=f"{score} increase when the column is shuffled")
    ax.set_title(f"permutation importance on {rows}" + (" (top 40)" if len(ranked) > 40 else ""))
    return figure


def write_importance(
    run_dir: Path, plan: Plan, head: str, ranked: Sequence[tuple[str, float, float]], score: str,
    rows: str,
) -> Path:  # fmt: skip
    folder = RunFolder(run_dir).plots
    where = folder / head if plan.multi else folder
    return _save(importance_bars(ranked, score, rows), where / "importance.png", run_dir)
