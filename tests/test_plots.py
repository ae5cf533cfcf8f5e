"""The plots in a run folder: the curves they draw are right, and a real run writes them."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from helpers import tiny_spec
from sklearn import metrics

from taskfit.report import plots
from taskfit.training.run import RunResult, train

Write = Callable[[str, str], Path]


def test_roc_and_precision_recall_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 300)
    score = np.round(np.clip(truth * 0.3 + rng.normal(0.4, 0.25, 300), 0, 1), 2)  # many ties
    fpr, tpr = plots.roc_curve(truth, score)
    want_fpr, want_tpr, _ = metrics.roc_curve(truth, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr)
    np.testing.assert_allclose(tpr, want_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc_score(truth, score))
    recall, precision = plots.precision_recall_curve(truth, score)
    want_precision, want_recall, _ = metrics.precision_recall_curve(truth, score)
    # scikit-learn lists thresholds lowest first and appends the (recall 0, precision 1) end
    np.testing.assert_allclose(recall, want_recall[::-1][1:])
    np.testing.assert_allclose(precision, want_precision[::-1][1:])


def test_loss_switches_are_the_epochs_where_the_loss_changes() -> None:
    assert plots._switches(["mse", "mse", "mae", "mae", "0.5 mae + 0.5 mse"]) == [
        (3, "mae"),
        (5, "0.5 mae + 0.5 mse"),
    ]
    assert plots._switches(["mse", "mse"]) == [] and plots._switches(None) == []


def _texts(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_confusion_matrix_names_the_classes_and_counts_each_cell() -> None:
    truth = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 2, 0])
    figure = plots.confusion_matrix(truth, predicted, ["cat", "dog", "bird"])
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]
    # row = actual, column = predicted
    assert _texts(ax) == ["1", "1", "0", "0", "1", "0", "1", "0", "2"]
    assert ax.get_title() == "test split: 6 rows, accuracy 0.667"


def test_every_count_in_the_confusion_matrix_is_readable_on_its_cell() -> None:
    """Each count's colour against its cell's passes WCAG's 4.5:1 for text, at every shade of
    the colour map (counts 0, 1, 7, 8 and 12: the old rule, white above half the largest,
    put white on the light blues of 7 and 8, at 3.1:1 and 3.9:1)."""
    truth = np.repeat(np.arange(3), [12, 8, 8])
    predicted = np.concatenate([np.zeros(12), [1] * 7 + [0], [2] * 8])
    figure = plots.confusion_matrix(truth, predicted.astype(int), ["a", "b", "c"])
    ax = figure.axes[0]
    (image,) = ax.get_images()
    counts = image.get_array()
    for text in ax.texts:
        row, column = round(text.get_position()[1]), round(text.get_position()[0])
        cell = plots.relative_luminance(image.cmap(image.norm(counts[row, column])))
        ink = plots.relative_luminance(matplotlib.colors.to_rgba(text.get_color()))
        light, dark = max(cell, ink), min(cell, ink)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (text.get_text(), text.get_color())


def test_learning_curves_mark_the_kept_epoch_and_the_loss_switch() -> None:
    history = {"loss": [3.0, 2.0, 1.0, 1.5], "val_loss": [3.1, 2.2, 1.2, 1.9], "mae": [2, 1, 1, 1]}
    figure = plots.learning_curves(history, ["loss", "mae"], 3, ["mse", "mse", "mae", "mae"])
    loss, mae = figure.axes[:2]
    assert [line.get_label() for line in loss.get_lines()] == [
        "training",
        "validation",
        "kept (epoch 3)",
        "_child3",  # the switch line: drawn, not in the legend (its text says what changed)
    ]
    assert loss.get_lines()[3].get_xdata()[0] == 3
    assert _texts(loss) == ["loss → mae"]
    assert mae.get_lines()[0].get_label() == "_child0"  # no validation: no legend entry


@pytest.fixture
def binary_run(tmp_path: Path) -> RunResult:
    schedule = (
        "schedule: {name: exponential_decay, initial_learning_rate: 0.01, decay_steps: 2, "
        "decay_rate: 0.5}\n"
    )
    spec = tiny_spec(tmp_path, "binary", epochs=3, extra=schedule)
    return train(spec, None, tmp_path / "runs", verbose=0)


@pytest.mark.plots
def test_a_binary_run_writes_its_plots_and_logs_the_schedule(binary_run: RunResult) -> None:
    run_dir = binary_run.run_dir
    names = sorted(p.name for p in (run_dir / "plots").iterdir())
    assert names == ["confusion.png", "learning_curves.png", "reliability.png", "roc_pr.png"]
    for name in names:
        image = matplotlib.image.imread(run_dir / "plots" / name)
        assert image.shape[0] > 300 and image.shape[1] > 300
    with (run_dir / "history.csv").open() as f:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    # 0.01 halved every 2 steps, read at each epoch's first step
    steps = math.ceil(binary_run.train_rows / 16)
    want = [0.01 * 0.5 ** (epoch * steps / 2) for epoch in range(3)]
    assert rates == pytest.approx(want, rel=1e-5)  # history.csv keeps 6 significant digits


@pytest.mark.plots
def test_regression_plots_are_in_the_label_units(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A price in the thousands is plotted in thousands, not as the standardised target."""
    lines = ["a,b,price"] + [
        f"{i % 7},{i % 5},{5000 + 300 * (i % 7) - 100 * (i % 5)}" for i in range(60)
    ]
    write("data.csv", "\n".join(lines) + "\n")
    spec = write(
        "spec.yaml",
        "task: regression\ndata: {source: data.csv, label: price}\ntraining: {epochs: 2}\n",
    )
    drawn: dict[str, np.ndarray] = {}

    def spy(actual: np.ndarray, predicted: np.ndarray, label: str, rows: str) -> Any:
        drawn.update(actual=actual, predicted=predicted, label=np.array(label))
        return real(actual, predicted, label, rows)

    real = plots.predicted_vs_actual
    monkeypatch.setattr(plots, "predicted_vs_actual", spy)
    run = train(spec, None, tmp_path / "runs", verbose=0).run_dir
    assert str(drawn["label"]) == "price"
    assert drawn["actual"].min() >= 4500 and drawn["actual"].max() <= 7000
    # the output layer rescales to the label's units from the first epoch on
    assert 3000 < float(np.mean(drawn["predicted"])) < 8000
    names = sorted(p.name for p in (run / "plots").iterdir())
    assert names == ["learning_curves.png", "predicted_vs_actual.png", "residuals.png"]


@pytest.mark.plots
def test_one_hot_labels_without_a_validation_split(write: Write, tmp_path: Path) -> None:
    """Class names from the one-hot columns; curves without validation lines."""
    rows = ["x1,x2,red,green,blue"]
    for i in range(60):
        hot = [int(i % 3 == k) for k in range(3)]
        rows.append(f"{i % 3 + (i % 7) / 10},{(i * 5) % 11},{hot[0]},{hot[1]},{hot[2]}")
    write("data.csv", "\n".join(rows) + "\n")
    spec = write(
        "spec.yaml",
        "task: multiclass\ndata: {source: data.csv, label: [red, green, blue], "
        "validation_fraction: 0}\ntraining: {epochs: 2, early_stopping: null}\n",
    )
    drawn: dict[str, Any] = {}
    real = plots.confusion_matrix

    def spy(truth: np.ndarray, predicted: np.ndarray, classes: list[str], rows: str) -> Any:
        drawn["classes"] = classes
        return real(truth, predicted, classes, rows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "confusion_matrix", spy)
        run = train(spec, None, tmp_path / "runs", verbose=0)
    assert drawn["classes"] == ["red", "green", "blue"]
    assert not run.warnings
    assert sorted(p.name for p in (run.run_dir / "plots").iterdir()) == [
        "confusion.png",
        "learning_curves.png",
        "reliability.png",
    ]


@pytest.mark.plots
def test_an_empty_test_split_skips_the_plots_with_a_warning(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "regression", epochs=2, extra="")
    text = spec.read_text().replace("label: y}", "label: y, test_fraction: 0.001}")
    spec.write_text(text)
    run = train(spec, None, tmp_path / "runs", verbose=0)
    assert run.status == "completed" and not (run.run_dir / "plots").exists()
    assert run.metrics == {}  # nothing evaluated on no rows
    said = "the test split is empty, so there are no test metrics and no plots"
    assert said in " ".join(run.warnings)
