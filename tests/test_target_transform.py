"""A right-skewed regression label that is never negative is learned on a log scale
(data.target_transform), while metrics and predictions stay in the label's units."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from helpers import chunk_of
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.data.targets import TargetShape, choose, skewness
from taskfit.errors import DataError, SpecError
from taskfit.model.build import build_model, named_inputs
from taskfit.model.optim import make_loss
from taskfit.plan.checking import check_spec
from taskfit.recipe.table import TargetRule, load_table

runner = CliRunner()
RULE = load_table().recipe("regression").target_rule


def skewed_csv(folder: Path, rows: int = 120, shift: float = 0.0) -> Path:
    """price = exp(a linear function of two columns + noise) + shift: a price-like label, its
    log linear in the inputs."""
    rng = np.random.default_rng(0)
    lines = ["rooms,age,price"]
    for _ in range(rows):
        rooms, age = rng.integers(1, 8), rng.uniform(0, 50)
        price = math.exp(11 + 0.3 * rooms - 0.01 * age + rng.normal(0, 0.3)) + shift
        lines.append(f"{rooms},{age:.1f},{price:.2f}")
    path = folder / "houses.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spec_for(folder: Path, extra: str = "") -> Path:
    path = folder / "spec.yaml"
    path.write_text(
        "task: regression\ndata: {source: houses.csv, label: price" + extra + "}\n"
        "model: {layers: [{units: 8}], members: 1, numeric_embedding: none}\n",
        encoding="utf-8",
    )
    return path


def test_the_rule_picks_log_for_positive_skewed_labels_and_log1p_with_zeros() -> None:
    assert RULE is not None
    prices = [math.exp(x / 10) for x in range(60)]  # skewed, every value above 0
    assert choose(RULE, TargetShape.of(prices))[0] == "log"
    counts = [0.0] * 30 + [float(2**k) for k in range(12)]  # zeros, then a long tail
    assert choose(RULE, TargetShape.of(counts))[0] == "none"  # the table leaves log1p to ask for
    assert choose(TargetRule(1.0, ("log", "log1p")), TargetShape.of(counts))[0] == "log1p"
    transform, why = choose(RULE, TargetShape.of([p - 10 for p in prices]))  # below 0 too
    assert transform == "none"
    assert "no transform fits labels down to" in why
    symmetric = [float(x) for x in range(-30, 31)]
    assert choose(RULE, TargetShape.of(symmetric)) == ("none", "skewness 0.00, not above 1")
    assert skewness([1.0, 1.0, 1.0]) == 0.0


def test_check_says_which_scale_the_label_is_learned_on(tmp_path: Path) -> None:
    skewed_csv(tmp_path)
    spec = spec_for(tmp_path)
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 0, result.output
    target = next(line for line in result.stdout.splitlines() if line.startswith("  target"))
    assert "log (every label above 0, skewness" in target
    assert "metrics and predictions in the label's units" in target
    said = runner.invoke(app, ["check", str(spec), "--set", "data.target_transform=none"])
    assert "  target    none (as the spec says)" in said.stdout
    resolved = check_spec(spec).resolved()
    assert resolved["data"]["target_transform"] == "log"


@pytest.mark.parametrize(
    ("shift", "asked", "error", "message"),
    [
        (
            -1e9,
            "log",
            DataError,
            "data.target_transform: log needs every label above 0; price goes down to -9.999",
        ),
        (-1e9, "log1p", DataError, "log1p needs every label 0 or above.*Use none"),
    ],
)
def test_a_transform_the_labels_cannot_take_is_refused(
    tmp_path: Path, shift: float, asked: str, error: type, message: str
) -> None:
    skewed_csv(tmp_path, shift=shift)
    with pytest.raises(error, match=message):
        check_spec(spec_for(tmp_path, f", target_transform: {asked}"))


def test_a_transform_on_a_class_label_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: binary\ndata: {source: breast_cancer, label: diagnosis}\n")
    with pytest.raises(SpecError, match="log rescales a regression label; this head is binary"):
        check_spec(spec, {"data.target_transform": "log"})


def test_the_model_learns_the_log_and_outputs_label_units(tmp_path: Path) -> None:
    skewed_csv(tmp_path)
    checked = check_spec(spec_for(tmp_path))
    head = checked.plan.head
    assert head.target_transform == "log"
    rng = np.random.default_rng(1)
    y = np.exp(rng.normal(10, 0.5, size=80)).astype("float32")
    x = {"rooms": rng.normal(size=(80, 1)).astype("float32")}
    part = chunk_of(x, {"output": y}, ("rooms",))
    models = build_model(checked.plan, ("rooms",), (), part)
    scale = models.fit.get_layer("body").get_layer("target_scale_log")
    assert scale.offset == pytest.approx(float(np.log(y.astype(np.float64)).mean()), rel=1e-5)
    assert scale.scale == pytest.approx(float(np.log(y.astype(np.float64)).std()), rel=1e-5)
    # with the output layer at zero the network predicts the mean log: the geometric mean
    output = models.fit.get_layer("body").get_layer("output")
    output.set_weights([np.zeros_like(w) for w in output.get_weights()])
    predicted = models.named.predict(named_inputs(part.named(("rooms",))), verbose=0)
    geometric = float(np.exp(np.log(y.astype(np.float64)).mean()))
    np.testing.assert_allclose(predicted, geometric, rtol=1e-4)
    # and the loss compares logs
    loss = make_loss(head)
    expected = np.mean((np.log(y) - np.log(geometric)) ** 2)
    got = float(loss(y.reshape(-1, 1), np.full((80, 1), geometric, "float32")))
    assert got == pytest.approx(expected, rel=1e-4)


def test_a_log1p_model_predicts_zero_where_it_learned_zero() -> None:
    from taskfit.model.stacks import label_units

    x = keras.Input(shape=(1,))
    stack = label_units("log1p", "target")
    y = x
    for layer in stack:
        y = layer(y)
    model = keras.Model(x, y)
    out = model.predict(np.log1p(np.array([[0.0], [9.0]], "float32")), verbose=0)
    np.testing.assert_allclose(out, [[0.0], [9.0]], atol=1e-5)


def test_train_reports_label_units_and_evaluate_agrees(tmp_path: Path) -> None:
    skewed_csv(tmp_path)
    spec = spec_for(tmp_path)
    runs = tmp_path / "runs"
    trained = runner.invoke(
        app,
        ["train", str(spec), "--output", str(runs), "--set", "training.epochs=3", "--json"],
    )
    assert trained.exit_code == 0, trained.output
    doc = json.loads(trained.stdout)
    run = Path(doc["run_dir"])
    resolved = yaml.safe_load((run / "spec.resolved.yaml").read_text())
    assert resolved["data"]["target_transform"] == "log"
    plan = json.loads((run / "plan.json").read_text())
    assert plan["heads"][0]["target_transform"] == "log"
    report = runner.invoke(app, ["report", str(run)])
    assert report.exit_code == 0, report.output
    assert "log (every label above 0, skewness" in report.stdout
    predicted = runner.invoke(
        app,
        ["predict", str(run), str(tmp_path / "houses.csv"), "--output", str(tmp_path / "p.csv")],
    )
    assert predicted.exit_code == 0, predicted.output
    rows = (tmp_path / "p.csv").read_text().splitlines()
    column = rows[0].split(",").index("predicted_price")
    values = [float(r.split(",")[column]) for r in rows[1:]]
    assert min(values) > 0  # exp: a log-scale model never predicts a price below 0
    assert 1e4 < float(np.median(values)) < 1e6  # label units, not log units (about 11-13)
    evaluated = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "houses.csv"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)["metrics"]
    prices = np.array(
        [
            float(line.split(",")[2])
            for line in (tmp_path / "houses.csv").read_text().splitlines()[1:]
        ]
    )
    assert metrics["mae"] == pytest.approx(np.abs(np.array(values) - prices).mean(), rel=1e-4)
    squared_log = np.mean((np.log(values) - np.log(prices)) ** 2)
    assert metrics["loss"] == pytest.approx(squared_log, rel=1e-3)  # not squared dollars


def test_a_head_of_several_takes_its_own_transform(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "data: {source: wine}\nheads:\n  cultivar: {task: multiclass, label: cultivar}\n"
        "  alcohol: {task: regression, label: alcohol, target_transform: log}\n"
    )
    checked = check_spec(spec)
    by_name = {h.name: h for h in checked.plan.heads}
    assert by_name["alcohol"].target_transform == "log"
    assert by_name["cultivar"].target_transform == "none"
    assert checked.resolved()["heads"]["alcohol"]["target_transform"] == "log"
    from taskfit.training.fit import make_splits

    splits = make_splits(checked)
    models = build_model(checked.plan, splits.columns.numeric, (), splits.train)
    assert isinstance(models.fit.get_layer("alcohol"), keras.layers.Activation)  # exp, last
    rescale = models.fit.get_layer("alcohol_log")
    alcohol = splits.train.y["alcohol"].astype(np.float64)
    assert rescale.offset == pytest.approx(float(np.log(alcohol).mean()), rel=1e-5)


def test_a_streamed_label_outside_the_transform_stops_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streamed file's transform is chosen on its first rows; a later label of 0 for a log is
    one error naming the column, exit 1, no traceback."""
    import taskfit.data.view

    monkeypatch.setattr(taskfit.data.view, "SAMPLE_ROWS", 60)
    csv = skewed_csv(tmp_path, rows=60)
    with csv.open("a") as f:
        f.writelines("3,10.0,0\n" for _ in range(40))
    spec = spec_for(tmp_path, ", streaming: true")
    assert check_spec(spec).plan.head.target_transform == "log"  # from the first 60 rows
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 1, result.output
    assert "column price: goes down to 0 in the training rows" in result.output
    assert "Traceback" not in result.output


def test_smearing_scales_the_predictions_by_the_mean_exp_residual(tmp_path: Path) -> None:
    from taskfit.feed.chunk import VALIDATION
    from taskfit.training.fit import Fitted, compile_plan, make_splits
    from taskfit.training.smearing import smear

    skewed_csv(tmp_path)
    checked = check_spec(spec_for(tmp_path))
    splits = make_splits(checked)
    models, trained, _, _ = compile_plan(keras, checked.plan, splits)
    fitted = Fitted(models, trained, {}, {}, {}, None, 0.0)
    rows = splits.part(VALIDATION)
    named = named_inputs(rows.named(splits.columns.numeric))
    before = models.named.predict(named, verbose=0).reshape(-1)
    factors = smear(fitted, checked.plan, splits)
    y = rows.y["output"].astype(np.float64)
    expected = float(np.mean(np.exp(np.log(y) - np.log(before.astype(np.float64)))))
    assert factors == {"output": pytest.approx(expected, rel=1e-4)}
    after = models.named.predict(named, verbose=0).reshape(-1)
    np.testing.assert_allclose(after, before * expected, rtol=1e-4)
    models.named.save(tmp_path / "model.keras")  # the factor is in the saved model
    reloaded = keras.saving.load_model(tmp_path / "model.keras").predict(named, verbose=0)
    np.testing.assert_allclose(reloaded.reshape(-1), after, rtol=1e-5)


def test_compare_ranks_no_loss_across_scales(tmp_path: Path) -> None:
    """A loss on the log scale and one in squared label units are not the same quantity."""
    skewed_csv(tmp_path)
    spec = spec_for(tmp_path)
    runs = tmp_path / "runs"
    folders = []
    for scale in ("log", "none"):
        command = ["train", str(spec), "--output", str(runs), "--json", "--set"]
        trained = runner.invoke(
            app, [*command, f"data.target_transform={scale}", "--set", "training.epochs=2"]
        )
        assert trained.exit_code == 0, trained.output
        folders.append(json.loads(trained.stdout)["run_dir"])
    compared = runner.invoke(app, ["compare", *folders, "--json"])
    assert compared.exit_code == 0, compared.output
    doc = json.loads(compared.stdout)
    assert [run["target"] for run in doc["runs"]] == ["log", "none"]
    assert "loss" not in doc["best"] and "mae" in doc["best"]
