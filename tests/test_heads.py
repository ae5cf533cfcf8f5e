"""Several heads, learned task weights, and losses that change during training."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import evaluated_names, history_rows
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.overrides import parse_set
from taskfit.data.labels import Labels
from taskfit.model.losses import LossSchedule
from taskfit.model.optim import make_loss
from taskfit.model.weighting import dwa_weights
from taskfit.plan.checking import check_spec
from taskfit.plan.make import make_plan
from taskfit.spec.spec import parse_spec
from taskfit.training.baseline import verdict

Write = Callable[[str, str], Path]
runner = CliRunner()
CONFIGS = Path(__file__).parents[1] / "configs"
WINE_HEADS = (
    "data: {source: wine}\n"
    "heads:\n"
    "  cultivar: {task: multiclass, label: cultivar}\n"
    "  alcohol: {task: regression, label: alcohol}\n"
)


def problem(write: Write, text: str) -> str:
    """`check` on a spec: exit code 1 and stderr, never a traceback."""
    result = runner.invoke(app, ["check", str(write("spec.yaml", text))])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    return result.stderr


def test_check_shows_the_resolved_head_table() -> None:
    result = runner.invoke(app, ["check", str(CONFIGS / "aux-output.yaml")])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["cultivar"][1:5] == ["multiclass", "cultivar", "integer", "Dense(3,"]
    assert rows["color"][1:4] == ["regression", "color_intensity", "real"]
    # its loss weight; no layers of its own; learned as it is (color_intensity's skewness 0.86)
    assert rows["color"][-3:] == ["0.2", "[]", "none"]
    doc = json.loads(
        runner.invoke(app, ["check", str(CONFIGS / "multitask.yaml"), "--json"]).stdout
    )
    heads = {h["head"]: h for h in doc["heads"]}
    assert heads["cultivar"]["loss"] == "sparse_categorical_crossentropy"
    assert heads["alcohol"] | {"classes": None} == heads["alcohol"] | {
        "task": "regression",
        "loss": "mse",
        "output": "Dense(1)",
        "weight": 1.0,
        "layers": [16],
        "classes": None,
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("task: binary\n" + WINE_HEADS, "task: is set together with `heads`"),
        (WINE_HEADS + "  more: {task: regression, label: alcohol}\n", "already the label of head"),
        (
            "data: {source: wine}\nheads:\n  c: {task: multiclass, label: cultivar}\n",
            "heads are for two or more outputs",
        ),
        (
            WINE_HEADS.replace("{source: wine}", "{source: wine, label: cultivar}"),
            "data.label: belongs on each head",
        ),
        (WINE_HEADS + "loss: mse\n", "loss: belongs on each head"),
        (WINE_HEADS + "training: {class_weight: balanced}\n", "works with one task only"),
        (WINE_HEADS + "loss_weighting: uncertainity\n", 'Did you mean "uncertainty"?'),
        (WINE_HEADS + "loss_weighting: {name: dwa, temperature: 0}\n", "must be a number > 0"),
        (
            WINE_HEADS.replace("label: alcohol}", "label: alcohol, loss_weight: 0.5}")
            + "loss_weighting: uncertainty\n",
            "heads.alcohol.loss_weight: is fixed weighting",
        ),
        (WINE_HEADS.replace("  alcohol:", "  alc-ohol:"), "a head name starts with a letter"),
        (
            "task: regression\ndata: {source: diabetes, label: progression}\n"
            "loss_weighting: uncertainty\n",
            "this spec has one task",
        ),
        (
            WINE_HEADS.replace("{source: wine}", "{source: wine, features: [alcohol, hue]}"),
            "'alcohol' is a label; a label is never an input",
        ),
    ],
)
def test_head_mistakes_are_refused_with_the_fix(write: Write, text: str, fragment: str) -> None:
    assert fragment in problem(write, text)


REGRESSION = "task: regression\ndata: {source: diabetes, label: progression}\n"
BINARY = "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (REGRESSION + "loss: {schedule: [{loss: mse}, {loss: mae}]}\n", "needs `until_epoch:`"),
        (
            REGRESSION
            + "loss: {schedule: [{loss: mse, until_epoch: 5}, {loss: mae, until_epoch: 9}]}\n",
            "the last stage runs to the end of training",
        ),
        (
            REGRESSION
            + "loss: {schedule: [{loss: mse, until_epoch: 5}, {loss: mae, until_epoch: 3}, "
            "{loss: huber}]}\n",
            "until_epoch must increase",
        ),
        (REGRESSION + "loss: {schedule: [{loss: mse}]}\n", "two or more stages"),
        (REGRESSION + "loss: {blend: [{loss: mse, weight: 1}]}\n", "two or more weighted losses"),
        (REGRESSION + "loss: {blend: [{loss: mse}, {loss: mae, weight: 1}]}\n", "needs `weight:`"),
        (
            REGRESSION + "loss: {blend: [{loss: mse, weight: 0}, {loss: mae, weight: 0}]}\n",
            "has every weight 0",
        ),
        (
            REGRESSION + "loss: {blend: [{loss: msee, weight: 1}, {loss: mae, weight: 1}]}\n",
            "unknown loss 'msee'. Did you mean \"mse\"?",
        ),
        (
            REGRESSION
            + "loss: {blend: [{loss: huber, weight: 1, delt: 2}, {loss: mae, weight: 1}]}\n",
            "unknown huber parameter 'delt'. Did you mean \"delta\"?",
        ),
        (
            BINARY
            + "loss: {schedule: [{loss: binary_crossentropy, until_epoch: 3}, {loss: mse}]}\n",
            "loss.schedule[1]: mse belongs to the regression row, not binary; the table row binary "
            "(one column with two values (0/1)): Dense(1, sigmoid) + binary_crossentropy. "
            "Use loss: binary_crossentropy",
        ),
        (
            "task: multiclass\ndata: {source: digits, label: digit}\nloss: {blend: ["
            "{loss: sparse_categorical_crossentropy, weight: 1}, "
            "{loss: categorical_focal_crossentropy, weight: 1}]}\n",
            "mixes losses that take class ids with losses that take one-hot rows",
        ),
    ],
)
def test_loss_form_mistakes_are_refused(write: Write, text: str, fragment: str) -> None:
    assert fragment in problem(write, text)


def test_loss_forms_become_stages_of_weighted_terms(write: Write) -> None:
    text = REGRESSION + (
        "loss: {schedule: [{loss: mse, until_epoch: 2},"
        " {blend: [{loss: mse, weight: 0.5}, {loss: huber, delta: 9.0, weight: 0.5}], until_epoch: 4},"
        " {loss: huber, delta: 9.0}]}\n"
    )
    plan = check_spec(write("spec.yaml", text)).plan
    loss = plan.head.loss
    assert [t.name for t in loss.terms] == ["mse", "huber"]
    assert [s.weights for s in loss.stages] == [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)]
    assert [loss.stage_at(epoch) for epoch in range(6)] == [0, 0, 1, 1, 2, 2]  # Keras counts from 0
    assert loss.describe(1) == "0.5*mse + 0.5*huber"
    assert loss.summary == (
        "mse (epochs 1-2), then 0.5*mse + 0.5*huber (epochs 3-4), then huber (epochs 5+)"
    )
    # spec.resolved.yaml writes the loss back in a form that loads to the same plan
    again = parse_spec(REGRESSION + "loss: " + json.dumps(loss.as_yaml()) + "\n", Path(".")).spec
    assert make_plan(again, {"output": Labels("real", ("progression",))}).head.loss == loss


def test_dwa_weights_follow_the_ratio_of_the_last_two_losses() -> None:
    assert dwa_weights([{"a": 1.0, "b": 1.0}], 2.0) is None  # weights stay 1 for two epochs
    weights = dwa_weights([{"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 1.0}], temperature=2.0)
    assert weights is not None
    expected = 2 * np.exp([0.25, 0.5]) / np.exp([0.25, 0.5]).sum()  # K * softmax(r / T)
    np.testing.assert_allclose([weights["a"], weights["b"]], expected)
    assert sum(weights.values()) == pytest.approx(2.0)  # the weights always sum to K


def test_baseline_verdict_is_a_paired_comparison_on_the_test_rows() -> None:
    rng = np.random.default_rng(0)
    alone = rng.integers(0, 2, size=200).astype(float)  # right / wrong per row
    better = np.where(rng.random(200) < 0.3, 1.0, alone)  # fixes ~15% of the rows
    assert verdict(better, alone) == "helps"
    assert verdict(alone, better) == "hurts"
    one_row = alone.copy()
    one_row[np.argmin(alone)] = 1.0  # a single row apart is no evidence
    assert verdict(one_row, alone) == "no clear difference"
    assert verdict(alone, alone) == "no clear difference"
    errors = -np.abs(rng.normal(size=200))
    assert verdict(errors * 0.8, errors) == "helps"  # 20% smaller absolute errors, row by row
    noise = errors + rng.normal(scale=0.5, size=200)
    assert verdict(noise + 0.01, noise) == "helps"  # small but on every row
    assert verdict(noise + 0.01, noise, gain=0.5) == "no clear difference"  # under 1 point / 1%
    assert verdict(errors + rng.normal(scale=0.5, size=200), errors) != "helps"


def test_a_loss_switch_takes_effect_inside_the_compiled_step() -> None:
    """mse in epoch 1, mae in epoch 2, on a model that cannot move (learning rate 0): each
    epoch's logged loss must be exactly that loss on the same fixed predictions."""
    keras.utils.set_random_seed(0)  # op determinism is on: run alone, nothing else seeds it
    spec = parse_spec(
        REGRESSION + "loss: {schedule: [{loss: mse, until_epoch: 1}, {loss: mae}]}\n", Path(".")
    ).spec
    head = make_plan(spec, {"output": Labels("real", ("progression",))}).head
    x = np.linspace(-1, 1, 16, dtype="float32").reshape(-1, 1)
    y = (3 * x[:, 0] + 2).astype("float32")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=make_loss(head))
    schedule = LossSchedule({"output": (head, model.loss)})
    history = model.fit(x, y, epochs=2, batch_size=16, callbacks=[schedule], verbose=0)
    error = model.predict(x, verbose=0)[:, 0] - y
    mse, mae = float(np.mean(error**2)), float(np.mean(np.abs(error)))
    assert abs(mse - mae) > 1.0  # the two losses are far apart here
    assert history.history["loss"] == pytest.approx([mse, mae], rel=1e-5)
    assert schedule.active["output"] == ["mse", "mae"]


@pytest.mark.plots
def test_heads_train_predict_and_evaluate(write: Write, tmp_path: Path) -> None:
    """Every head's loss and metrics under Keras's names in history.csv and metrics.json; predict
    and evaluate handle every head; the saved model loads with plain Keras."""
    spec = write(
        "heads.yaml",
        WINE_HEADS.replace(
            "label: alcohol}",
            "label: alcohol, loss: {schedule: [{loss: mse, until_epoch: 2}, {loss: mae}]}}",
        )
        + "training: {epochs: 4, early_stopping: null}\n",
    )
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    run = Path(doc["run_dir"])
    history = history_rows(run)
    assert [row["alcohol_active_loss"] for row in history] == ["mse", "mse", "mae", "mae"]
    for name in ("cultivar_loss", "cultivar_accuracy", "alcohol_loss", "alcohol_mae", "loss"):
        assert name in history[0] and f"val_{name}" in history[0]
    assert {row["cultivar_weight"] for row in history} == {"1"}
    assert sorted(str(p.relative_to(run / "plots")) for p in (run / "plots").rglob("*.png")) == [
        "alcohol/learning_curves.png",
        "alcohol/predicted_vs_actual.png",
        "alcohol/residuals.png",
        "cultivar/confusion.png",
        "cultivar/learning_curves.png",
        "cultivar/reliability.png",
        "learning_curves.png",
    ]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics == doc["metrics"]
    # total = 1.0 * cultivar_loss + 1.0 * alcohol_loss (Keras averages each over batches apart)
    total = metrics["cultivar_loss"] + metrics["alcohol_loss"]
    assert metrics["loss"] == pytest.approx(total, rel=1e-2)

    wine = Path(__file__).parents[1] / "taskfit" / "data" / "datasets" / "wine.csv"
    predicted = runner.invoke(app, ["predict", str(run), str(wine)])
    assert predicted.exit_code == 0, predicted.output
    rows = list(csv.DictReader(predicted.stdout.splitlines()))
    assert len(rows) == 178
    assert list(rows[0]) == [
        "predicted_cultivar",
        "cultivar_probability_A",
        "cultivar_probability_B",
        "cultivar_probability_C",
        "predicted_alcohol",
    ]
    assert {r["predicted_cultivar"] for r in rows} <= {"A", "B", "C"}
    alcohol = np.mean([float(r["predicted_alcohol"]) for r in rows])
    assert 8 < alcohol < 18  # % vol, not standardised

    evaluated = runner.invoke(app, ["evaluate", str(run), str(wine), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert set(report["metrics"]) == evaluated_names(metrics)
    confusion = report["confusion"]["cultivar"]
    assert sum(sum(row.values()) for row in confusion.values()) == 178
    correct = sum(confusion[c][c] for c in confusion) / 178
    assert report["metrics"]["cultivar_accuracy"] == pytest.approx(correct, abs=1e-6)
    # a folder written before run.json kept the target scales (format 2) scores the same
    facts = json.loads((run / "run.json").read_text())
    assert set(facts.pop("targets")) == {"alcohol"}
    (run / "run.json").write_text(json.dumps(facts))
    again = runner.invoke(app, ["evaluate", str(run), str(wine), "--json"])
    assert json.loads(again.stdout)["metrics"] == pytest.approx(report["metrics"])

    load = "import keras, sys; keras.saving.load_model(sys.argv[1]); print('loaded')"
    loaded = subprocess.run(
        [sys.executable, "-c", load, str(run / "model.keras")], capture_output=True, text=True
    )
    assert loaded.stdout.strip() == "loaded", loaded.stderr[-2000:]


def test_baseline_single_trains_each_head_alone(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(CONFIGS / "multitask.yaml"),
            "--baseline-single",
            "--set",
            "training.epochs=3",
            "--output",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    baseline = doc["baseline_single"]
    assert set(baseline) == {"cultivar", "alcohol"}
    assert baseline["cultivar"]["metric"] == "accuracy"
    assert baseline["alcohol"]["metric"] == "mae"
    for head, row in baseline.items():
        assert row["multi_task"] == doc["metrics"][f"{head}_{row['metric']}"]
        assert row["verdict"] in ("helps", "hurts", "no clear difference")
        sign = 1 if row["metric"] == "accuracy" else -1  # accuracy: higher is better
        gain = sign * (row["multi_task"] - row["single_task"])
        assert np.sign(row["difference"]) == np.sign(gain)
    saved = json.loads((Path(doc["run_dir"]) / "baseline_single.json").read_text())
    assert saved == baseline


def test_baseline_single_needs_heads(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["train", str(CONFIGS / "regression.yaml"), "--baseline-single", "--output", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "this spec has one task (give `heads`)" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def noisy_heads_csv(rows: int = 800) -> str:
    """Two regression labels of the same inputs: one exact, one buried in noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    clean = x @ [1.0, -2.0, 0.5]
    noisy = x @ [0.5, 1.0, -1.0] + rng.normal(scale=4.0, size=rows)
    lines = ["a,b,c,clean,noisy"] + [
        ",".join(f"{v:.4f}" for v in (*x[i], clean[i], noisy[i])) for i in range(rows)
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_uncertainty_weighting_weighs_the_noisy_head_down(write: Write, tmp_path: Path) -> None:
    write("noisy.csv", noisy_heads_csv())
    spec = write(
        "spec.yaml",
        "data: {source: noisy.csv}\n"
        "heads:\n"
        "  clean: {task: regression, label: clean}\n"
        "  noisy: {task: regression, label: noisy}\n"
        "loss_weighting: uncertainty\n"
        "training: {epochs: 80, early_stopping: null}\n",
    )
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    history = history_rows(Path(doc["run_dir"]))
    first, last = history[0], history[-1]
    # both start near 1/2 (s = 0 for regression heads); the learned weights part ways, the
    # noisy head's ending clearly lower (its standardised loss cannot fall below the noise)
    for head in ("clean", "noisy"):
        assert float(first[f"{head}_weight"]) == pytest.approx(0.5, abs=0.05)
    assert float(last["noisy_weight"]) < 0.8 * float(last["clean_weight"])
    assert doc["metrics"]["noisy_weight"] == pytest.approx(float(last["noisy_weight"]), rel=1e-4)


def trivial_score(head: str, task: str, y_train: np.ndarray, y_test: np.ndarray) -> float:
    """Majority-class accuracy, or the mean predictor's MAE."""
    if task == "regression":
        return float(np.mean(np.abs(y_test - y_train.mean())))
    values, counts = np.unique(y_train, return_counts=True)
    return float(np.mean(y_test == values[counts.argmax()]))


@pytest.mark.slow
@pytest.mark.parametrize(
    "config", ["aux-output", "multitask", "uncertainty", "loss-schedule", "experts"]
)
def test_head_configs_beat_trivial_baselines(config: str, tmp_path: Path) -> None:
    from taskfit.feed.chunk import TEST, TRAIN
    from taskfit.training.fit import make_splits
    from taskfit.training.run import train

    path = CONFIGS / f"{config}.yaml"
    result = train(path, parse_set(["training.epochs=30"]), output=tmp_path, verbose=0)
    checked = result.checked
    plan = checked.plan
    splits = make_splits(checked)
    train, test = splits.part(TRAIN), splits.part(TEST)
    for head in plan.heads:
        prefix = f"{head.name}_" if plan.multi else ""
        metric = "mae" if head.task == "regression" else "accuracy"
        ours = result.metrics[prefix + metric]
        trivial = trivial_score(head.name, head.task, train.y[head.name], test.y[head.name])
        if head.task == "regression":
            assert ours < 0.8 * trivial, (head.name, ours, trivial)
        else:
            assert ours > trivial + 0.2, (head.name, ours, trivial)


def test_recommend_with_several_labels_writes_a_spec_with_heads(tmp_path: Path) -> None:
    wine = Path(__file__).parents[1] / "taskfit" / "data" / "datasets" / "wine.csv"
    spec = tmp_path / "spec.yaml"
    args = ["recommend", "--data", str(wine), "--label", "cultivar", "--label", "alcohol"]
    result = runner.invoke(app, [*args, "--write", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["heads"]
    assert (rows["cultivar"]["loss"], rows["alcohol"]["loss"]) == (
        "sparse_categorical_crossentropy",
        "mse",
    )
    assert "alcohol: 126 distinct numbers -> regression" in result.stderr
    plan = check_spec(spec).plan
    assert [(h.name, h.task) for h in plan.heads] == [
        ("cultivar", "multiclass"),
        ("alcohol", "regression"),
    ]


def test_a_smoke_run_with_learned_weights_reloads_the_saved_model(tmp_path: Path) -> None:
    """The uncertainty wrapper trains the model; the saved file holds the model alone."""
    args = [
        "train",
        str(CONFIGS / "uncertainty.yaml"),
        "--smoke",
        "--json",
        "--output",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["smoke"]["reload_matches"] is True
    assert set(doc["metrics"]) >= {"cultivar_weight", "alcohol_weight", "cultivar_accuracy"}


def test_recommend_lists_the_loss_weightings_from_the_table() -> None:
    row = json.loads(
        runner.invoke(app, ["recommend", "--task", "binary", "--format", "json"]).stdout
    )
    assert list(row["loss_weightings"]) == ["fixed", "uncertainty", "dwa", "pcgrad", "gradnorm"]
    assert list(row["sharings"]) == ["hard", "soft", "mmoe"]
    table = runner.invoke(app, ["recommend", "--task", "regression", "--heads"]).stdout
    assert all(f"│ {name} " in table for name in [*row["loss_weightings"], *row["sharings"]])
    assert "schedule or blend" in table
