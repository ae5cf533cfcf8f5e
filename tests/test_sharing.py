"""Several heads beyond one trunk: soft sharing, mixture of experts, and the gradient methods
(PCGrad, GradNorm): each mechanism shown to do what its paper says, then each trained end to
end through the real CLI."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import history_rows, wait_for_epochs
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.model.gradients import (
    HeadGradients,
    gradnorm_loss,
    gradnorm_weights,
    project_conflicts,
)
from taskfit.model.sharing import tower_distance
from taskfit.plan.plan import Head

Write = Callable[[str, str], Path]
runner = CliRunner()
WINE_HEADS = (
    "data: {source: wine}\n"
    "heads:\n"
    "  cultivar: {task: multiclass, label: cultivar}\n"
    "  alcohol: {task: regression, label: alcohol}\n"
    "model: {layers: [{units: 16}, {units: 8}]}\n"
)


def trained(spec: Path, tmp_path: Path, *extra: str) -> tuple[dict[str, object], Path]:
    result = runner.invoke(
        app, ["train", str(spec), "--output", str(tmp_path / "runs"), "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    return doc, Path(doc["run_dir"])


# --- soft sharing -------------------------------------------------------------------------


def test_tower_distance_is_the_sum_over_pairs_of_squared_distances() -> None:
    rng = np.random.default_rng(0)
    towers = [rng.normal(size=(3, 4)).astype("float32") for _ in range(3)]
    pairs = sum(np.sum((a - b) ** 2) for i, a in enumerate(towers) for b in towers[i + 1 :])
    variables = [[keras.Variable(t) for t in towers]]
    assert float(tower_distance(variables)) == pytest.approx(float(pairs), rel=1e-5)
    same = [[keras.Variable(towers[0]) for _ in range(3)]]
    assert float(tower_distance(same)) == pytest.approx(0.0, abs=1e-9)


def test_the_soft_penalty_falls_as_the_towers_align(write: Write, tmp_path: Path) -> None:
    """Towers start apart (each its own initial weights); a strong penalty draws them
    together, so the logged penalty falls epoch by epoch, and the saved model holds two
    towers of plain Dense layers."""
    spec = write("spec.yaml", WINE_HEADS + "training: {epochs: 8, early_stopping: null}\n")
    _doc, run_dir = trained(spec, tmp_path, "--set", "model.sharing={name: soft, strength: 1.0}")
    penalty = [float(row["sharing_penalty"]) for row in history_rows(run_dir)]
    assert all(b < a for a, b in itertools.pairwise(penalty)), penalty
    assert penalty[-1] < 0.85 * penalty[0], penalty  # Adam moves each weight about 0.001 a step
    model = keras.saving.load_model(run_dir / "model.keras")  # safe mode: Keras layers only
    body = model.get_layer("preprocess_and_body")
    assert {"cultivar_tower", "alcohol_tower"} <= {layer.name for layer in body.layers}
    report = runner.invoke(app, ["report", str(run_dir)])
    assert "soft (strength 1)" in report.stdout


def test_soft_and_mmoe_need_hidden_layers_and_heads(write: Write) -> None:
    spec = write("spec.yaml", WINE_HEADS.replace("[{units: 16}, {units: 8}]", "[]"))
    empty = runner.invoke(app, ["check", str(spec), "--set", "model.sharing=mmoe"])
    assert empty.exit_code == 1
    assert "model.sharing: mmoe builds each tower or expert of model.layers" in empty.stderr
    one = write("one.yaml", "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n")
    single = runner.invoke(app, ["check", str(one), "--set", "model.sharing=soft"])
    assert single.exit_code == 1 and "shapes several heads; this spec has one task" in single.stderr
    wrong = runner.invoke(
        app, ["check", str(spec), "--set", "model.sharing={name: mmoe, experts: 1}"]
    )
    assert wrong.exit_code == 1 and "must be an integer >= 2. Got 1 instead" in wrong.stderr


# --- mixture of experts -------------------------------------------------------------------


@pytest.mark.plots
def test_mmoe_logs_and_draws_each_heads_gate_weights(write: Write, tmp_path: Path) -> None:
    spec = write("spec.yaml", WINE_HEADS + "training: {epochs: 3}\n")
    _doc, run_dir = trained(spec, tmp_path, "--set", "model.sharing={name: mmoe, experts: 3}")
    rows = history_rows(run_dir)
    for head in ("cultivar", "alcohol"):
        for row in rows:  # a softmax: each head's mean weights over the experts sum to 1
            weights = [float(row[f"{head}_gate_{k}"]) for k in (1, 2, 3)]
            assert sum(weights) == pytest.approx(1.0, abs=1e-5) and min(weights) > 0
    assert (run_dir / "plots" / "gates.png").stat().st_size > 1000
    model = keras.saving.load_model(run_dir / "model.keras")
    body = model.get_layer("preprocess_and_body")
    assert {"experts", "cultivar_gate", "alcohol_gate"} <= {layer.name for layer in body.layers}
    check = runner.invoke(app, ["check", str(spec), "--set", "model.sharing=mmoe"])
    assert "sharing   mmoe (experts 4)" in check.stdout


# --- PCGrad -------------------------------------------------------------------------------


def test_pcgrad_projects_conflicting_gradients_off_each_other() -> None:
    a, b = np.array([1.0, 0.0]), np.array([-1.0, 1.0])  # a . b = -1: they conflict
    grads = keras.ops.convert_to_tensor(np.stack([a, b]), "float32")
    for order in ([0, 1], [1, 0]):
        projected = keras.ops.convert_to_numpy(project_conflicts(grads, np.array(order)))
        assert projected[0] @ b >= -1e-6 and projected[1] @ a >= -1e-6  # no conflict left
        assert projected[0] == pytest.approx(a - (a @ b) / (b @ b) * b)
    agreeing = keras.ops.convert_to_tensor([[1.0, 0.0], [1.0, 1.0]], "float32")
    unchanged = project_conflicts(agreeing, np.array([0, 1]))
    assert keras.ops.convert_to_numpy(unchanged) == pytest.approx(np.array([[1, 0], [1, 1]]))


def conflict_model(method: str, alpha: float = 0.0) -> HeadGradients:
    """x -> a shared weight w (1 at the start) -> two heads of one weight each (1): head a
    wants w * x = 10 x, head b wants -10 x, so their gradients on w point against each other."""
    keras.utils.set_random_seed(0)  # op determinism is on: fit's shuffling needs a seed
    x = keras.Input((1,), name="x")
    shared = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="shared")(x)
    outputs = {
        name: keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name=name)(shared)
        for name in ("a", "b")
    }
    net = keras.Model(x, outputs)
    heads = [Head(n, "regression", None, (), 1, "linear", None, False, ()) for n in "ab"]  # type: ignore[arg-type]
    losses = {"a": keras.losses.MeanSquaredError(), "b": keras.losses.MeanSquaredError()}
    model = HeadGradients(net, heads, losses, method, alpha)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def test_pcgrad_leaves_a_shared_weight_alone_when_the_heads_pull_it_apart() -> None:
    """On one shared weight two conflicting gradients project each other to 0: the compiled
    step leaves w where it was, while each head's own weight still moves."""
    x = np.linspace(0.5, 1.5, 16, dtype="float32").reshape(-1, 1)
    y = {"a": 10 * x, "b": -10 * x}
    model = conflict_model("pcgrad")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    shared = model.net.get_layer("shared").kernel
    assert float(keras.ops.convert_to_numpy(shared)[0, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(keras.ops.convert_to_numpy(model.net.get_layer("a").kernel)[0, 0]) > 1.0


# --- GradNorm -----------------------------------------------------------------------------


def test_gradnorm_moves_its_weights_toward_equal_gradient_norms() -> None:
    """Head 0's gradient is 10 times head 1's, their losses fall alike: gradient descent on
    GradNorm's loss lowers head 0's weight and raises head 1's until w * n is near equal."""
    logits = keras.Variable(np.zeros(2, dtype="float32"))
    norms, ratios = np.array([10.0, 1.0], "float32"), np.array([1.0, 1.0], "float32")
    optimizer = keras.optimizers.SGD(0.01)
    import tensorflow as tf

    gaps = []
    for _ in range(200):
        weighted = keras.ops.convert_to_numpy(gradnorm_weights(logits)) * norms
        gaps.append(abs(weighted[0] - weighted[1]))
        with tf.GradientTape() as tape:
            loss = gradnorm_loss(logits, norms, ratios, alpha=1.5)
        optimizer.apply_gradients([(tape.gradient(loss, logits), logits)])
    weights = keras.ops.convert_to_numpy(gradnorm_weights(logits))
    assert weights.sum() == pytest.approx(2.0) and weights[0] < 1.0 < weights[1]
    assert gaps[-1] < 0.5 * gaps[0]


def test_gradnorm_in_the_compiled_step_weighs_down_the_head_of_larger_gradients() -> None:
    x = np.linspace(0.5, 1.5, 16, dtype="float32").reshape(-1, 1)
    y = {"a": 10 * x, "b": 1.5 * x}  # a's error, and its gradient on w, is far larger
    model = conflict_model("gradnorm", alpha=0.0)
    model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    weights = model.weights_now()
    assert sum(weights.values()) == pytest.approx(2.0, rel=1e-5)
    assert weights["a"] < 1.0 < weights["b"]


# --- end to end ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "choice",
    ["loss_weighting=pcgrad", "loss_weighting={name: gradnorm, alpha: 1.0}"],
)
def test_the_gradient_methods_train_through_the_cli(
    choice: str, write: Write, tmp_path: Path
) -> None:
    spec = write("spec.yaml", WINE_HEADS + "training: {epochs: 4}\n")
    _doc, run_dir = trained(spec, tmp_path, "--set", choice)
    rows = history_rows(run_dir)
    assert len(rows) == 4 and {"cultivar_weight", "alcohol_weight", "val_loss"} <= set(rows[0])
    losses = [float(row["loss"]) for row in rows]
    assert losses[-1] < losses[0] and np.isfinite(losses).all()
    weights = [float(rows[-1][f"{h}_weight"]) for h in ("cultivar", "alcohol")]
    if "pcgrad" in choice:
        assert weights == [1.0, 1.0]  # pcgrad keeps the heads' loss_weight
    else:
        assert sum(weights) == pytest.approx(2.0, rel=1e-4) and weights != [1.0, 1.0]


def test_the_gradient_methods_refuse_the_jax_workers(write: Write) -> None:
    """As a process of its own: the CLI keeps JAX out of its imports (taskfit.cli.app.main),
    and --workers must still find it installed (it once said "needs JAX, which is not
    installed" whatever the spec)."""
    spec = write("spec.yaml", WINE_HEADS)
    command = ["train", str(spec), "--workers", "2", "--set", "loss_weighting=pcgrad"]
    done = subprocess.run(
        [sys.executable, "-m", "taskfit", *command], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr
    assert "loss_weighting: pcgrad takes each head's gradient apart" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "choices",
    [
        ["model.sharing={name: soft, strength: 0.01}", "loss_weighting=pcgrad"],
        ["model.sharing={name: mmoe, experts: 2}", "loss_weighting=gradnorm"],
    ],
    ids=["soft-pcgrad", "mmoe-gradnorm"],
)
def test_a_killed_run_resumes_as_if_never_stopped(
    choices: list[str], write: Write, tmp_path: Path
) -> None:
    """The state these keep (pcgrad's order seed, gradnorm's logits and first losses) is in
    the checkpoint: a run killed at epoch 3 of 6 and resumed logs what an unbroken run logs,
    the penalty, the gates and the learned weights included."""
    spec = write("spec.yaml", WINE_HEADS + "training: {epochs: 6, early_stopping: null}\n")
    settings = [arg for choice in choices for arg in ("--set", choice)]
    _, whole = trained(spec, tmp_path / "whole", *settings)
    taskfit = Path(sys.executable).with_name("taskfit")
    killed = tmp_path / "killed"
    command = [str(taskfit), "train", str(spec), "--output", str(killed), *settings]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL, text=True)
    run_dir = wait_for_epochs(killed, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir), "--json"])
    assert resumed.exit_code == 0, resumed.output
    expected, got = history_rows(whole), history_rows(run_dir)
    assert [row["epoch"] for row in got] == [str(i) for i in range(1, 7)]
    columns = [c for c in expected[0] if c not in ("epoch", "alcohol_active_loss")]
    assert any(c.startswith(("sharing_penalty", "cultivar_gate_")) for c in columns)
    for column in columns:
        assert [float(r[column]) for r in got] == pytest.approx(
            [float(r[column]) for r in expected], rel=1e-4
        ), column
