"""The small-table additions (recipes/small_tables.yaml): when they apply, what the spec says of
them, the packed ensemble and periodic embedding they build, and the refit on train + validation."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import yaml
from helpers import chunk_of, evaluated_names, mixed_csv, tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.overrides import parse_set
from taskfit.data.labels import Labels
from taskfit.errors import SpecError
from taskfit.feed.chunk import TEST, TRAIN, Chunk
from taskfit.feed.splits import Splits
from taskfit.model.build import build_model, named_inputs
from taskfit.plan.checking import check_spec
from taskfit.plan.make import make_plan
from taskfit.plan.plan import additions_text, plan_summary
from taskfit.recipe.table import load_table
from taskfit.spec.spec import parse_spec
from taskfit.training import feeding
from taskfit.training.fit import Replay, fit_plan, make_splits
from taskfit.training.refit import refit

pytestmark = pytest.mark.additions
runner = CliRunner()
SMALL = load_table().small_tables
DEFAULTS = ", ".join(
    additions_text(
        SMALL.members, SMALL.numeric_embedding, SMALL.refit, SMALL.ensemble, bagging=SMALL.bagging
    )
)
CANCER = "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n"
WINE_HEADS = (
    "data: {source: wine}\nheads:\n  cultivar: {task: multiclass, label: cultivar}\n"
    "  alcohol: {task: regression, label: alcohol}\n"
)


def spec_file(folder: Path, text: str) -> Path:
    path = folder / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# the refit tests need no members or embedding (they would only cost time)
ONE_PLAIN_BODY = parse_set(["model.members=1", "model.numeric_embedding=none"])
REFIT_ONE_PLAIN_BODY = {**ONE_PLAIN_BODY, **parse_set(["training.refit=true"])}


def additions(plan: Any) -> tuple[int, bool, bool]:
    """Members, whether numbers are embedded, refit."""
    return plan.members, plan.embedding.name != "none", plan.refit


def test_a_small_table_gets_the_table_additions_and_the_resolved_spec_says_so(
    tmp_path: Path,
) -> None:
    checked = check_spec(spec_file(tmp_path, CANCER))  # 569 rows
    assert additions(checked.plan) == (SMALL.members, True, SMALL.refit)
    assert f"additions: {DEFAULTS}" in plan_summary(checked.plan)
    resolved = checked.resolved()
    assert resolved["model"]["members"] == SMALL.members
    # the embedding by name and every setting, as the resolved spec writes an optimizer
    embedding = SMALL.numeric_embedding
    assert resolved["model"]["numeric_embedding"] == {
        "name": embedding,
        **SMALL.embeddings[embedding].defaults(),
    }
    assert resolved["training"]["refit"] is SMALL.refit
    assert resolved["training"]["bagging"] is SMALL.bagging
    shown = runner.invoke(app, ["check", str(tmp_path / "spec.yaml")])
    assert f"  additions {DEFAULTS}" in shown.stdout
    # loaded again, the resolved spec asks for the same, explicitly; folds are for one process
    again = spec_file(tmp_path, yaml.safe_dump(resolved))
    assert check_spec(again).plan.bagging is SMALL.bagging
    with pytest.raises(SpecError, match=r"training\.bagging: deals a table held in memory"):
        check_spec(again, workers=True)
    resolved["training"]["bagging"] = False
    again = spec_file(tmp_path, yaml.safe_dump(resolved))
    assert additions(check_spec(again, workers=True).plan) == (SMALL.members, True, SMALL.refit)


def test_the_additions_are_off_for_a_big_table_heads_streaming_or_workers(tmp_path: Path) -> None:
    loaded = parse_spec(CANCER, Path("."))
    labels = check_spec(spec_file(tmp_path, CANCER)).data.labels
    assert additions(make_plan(loaded.spec, labels, SMALL.up_to_rows)) == (
        SMALL.members,
        True,
        SMALL.refit,
    )
    assert additions(make_plan(loaded.spec, labels, SMALL.up_to_rows + 1)) == (1, False, False)
    assert additions(check_spec(spec_file(tmp_path, CANCER), workers=True).plan) == (
        1,
        False,
        False,
    )
    assert additions(check_spec(spec_file(tmp_path, WINE_HEADS)).plan) == (1, False, False)
    (tmp_path / "data.csv").write_text(mixed_csv(100))
    streamed = "task: binary\ndata: {source: data.csv, label: bought, streaming: true}\n"
    assert additions(check_spec(spec_file(tmp_path, streamed)).plan) == (1, False, False)
    # no validation split: nothing to refit on, the rest stays
    no_validation = check_spec(
        spec_file(tmp_path, CANCER),
        parse_set(["data.validation_fraction=0", "training.early_stopping=null"]),
    )
    assert additions(no_validation.plan) == (SMALL.members, True, False)


def widths(plan: Any) -> list[int]:
    return [layer.units for layer in plan.layers]


def test_a_small_table_gets_the_small_table_layers_unless_the_spec_gives_its_own(
    tmp_path: Path,
) -> None:
    small = [int(layer["units"]) for layer in SMALL.layers]
    row = [int(layer["units"]) for layer in load_table().recipe("binary").layers]
    assert small != row  # else this test could not tell them apart
    checked = check_spec(spec_file(tmp_path, CANCER))
    assert widths(checked.plan) == small
    assert [layer["units"] for layer in checked.resolved()["model"]["layers"]] == small
    shown = runner.invoke(app, ["check", str(tmp_path / "spec.yaml")])
    assert "  layers    " + " -> ".join(f"{units} relu" for units in small) in shown.stdout
    # the spec's own layers stay, on a small table too
    given = check_spec(spec_file(tmp_path, CANCER), parse_set(["model.layers=[{units: 8}]"]))
    assert widths(given.plan) == [8]
    # a big, streamed or worker-dealt table, or heads: the task row's layers
    loaded = parse_spec(CANCER, Path("."))
    labels = checked.data.labels
    assert widths(make_plan(loaded.spec, labels, SMALL.up_to_rows + 1)) == row
    assert widths(check_spec(spec_file(tmp_path, CANCER), workers=True).plan) == row
    (tmp_path / "data.csv").write_text(mixed_csv(100))
    streamed = "task: binary\ndata: {source: data.csv, label: bought, streaming: true}\n"
    assert widths(check_spec(spec_file(tmp_path, streamed)).plan) == row
    multiclass = [int(layer["units"]) for layer in load_table().recipe("multiclass").layers]
    assert widths(check_spec(spec_file(tmp_path, WINE_HEADS)).plan) == multiclass


def test_each_addition_is_the_specs_to_set(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, CANCER)
    refit = SMALL.refit
    assert additions(check_spec(spec, parse_set(["model.members=1"])).plan) == (1, True, refit)
    assert additions(check_spec(spec, parse_set(["model.numeric_embedding=none"])).plan) == (
        SMALL.members,
        False,
        refit,
    )
    flipped = parse_set([f"training.refit={str(not refit).lower()}"])
    assert additions(check_spec(spec, flipped).plan) == (SMALL.members, True, not refit)
    # asked for on a table that would not get them by default
    loaded = parse_spec(
        CANCER + "model: {members: 2, numeric_embedding: periodic}\ntraining: {refit: true}\n",
        Path("."),
    )
    labels = check_spec(spec).data.labels
    assert additions(make_plan(loaded.spec, labels, None)) == (2, True, True)


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        (
            WINE_HEADS,
            ["model.members=3"],
            "model.members: works with one task; this spec has heads",
        ),
        (
            WINE_HEADS,
            ["training.refit=true"],
            "training.refit: works with one task; this spec has heads",
        ),
        (
            WINE_HEADS,
            ["model.numeric_embedding=periodic"],
            "model.numeric_embedding: works with one task; this spec has heads",
        ),
        (
            WINE_HEADS,
            ["model.ensemble=tabm_mini"],
            "model.ensemble: works with one task; this spec has heads",
        ),
        (CANCER, ["model.ensemble=batch"], "packed"),
        (
            CANCER,
            ["training.refit=true", "data.validation_fraction=0", "training.early_stopping=null"],
            "adds the validation rows to training, but data.validation_fraction is 0",
        ),
        (
            CANCER,
            ["model.members=0"],
            "--set model.members: must be an integer >= 1. Got 0 instead",
        ),
        (CANCER, ["model.numeric_embedding=fourier"], "periodic"),
        (
            CANCER,
            ["model.numeric_embedding={name: piecewise, bins: 0}"],
            "--set model.numeric_embedding.bins: must be an integer >= 1. Got 0 instead",
        ),
        (
            CANCER,
            ["model.numeric_embedding={name: periodic, sigma: 0}"],
            "--set model.numeric_embedding.sigma: must be a number > 0. Got 0 instead",
        ),
        (
            CANCER,
            ["model.numeric_embedding={name: periodic, width: 3}"],
            "unknown periodic parameter",
        ),
        (
            CANCER,
            ["model.numeric_embedding={name: none, units: 3}"],
            "--set model.numeric_embedding.units: none takes no parameters; remove 'units'",
        ),
    ],
)
def test_an_addition_that_cannot_apply_is_a_spec_error(
    tmp_path: Path, text: str, overrides: list[str], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        check_spec(spec_file(tmp_path, text), parse_set(overrides))


def test_refit_on_a_streamed_csv_trains_on_the_training_and_validation_rows(
    tmp_path: Path,
) -> None:
    (tmp_path / "data.csv").write_text(mixed_csv(100))
    spec = spec_file(
        tmp_path,
        "task: binary\ndata: {source: data.csv, label: bought, streaming: true}\n"
        "training: {refit: true, epochs: 3}\n",
    )
    command = ["train", str(spec), "--output", str(tmp_path / "runs"), "--json"]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    facts = json.loads((Path(doc["run_dir"]) / "run.json").read_text())
    rows = facts["rows"]
    assert doc["refit"]["rows"] == rows["train"] + rows["validation"] == 99 - rows["test"]
    assert doc["refit"]["epochs"] == (doc["best_epoch"] or doc["epochs"])


def test_workers_take_an_asked_for_addition(tmp_path: Path) -> None:
    """Asked for, an addition is fitted across processes (tests/test_distributed.py runs one);
    unasked, the small-table defaults stay off for several processes."""
    pytest.importorskip("jax")
    from taskfit.training.distributed import check_distributable, local_cluster

    spec = spec_file(tmp_path, CANCER + "model: {members: 2}\n")
    asked = check_spec(spec, workers=True)
    check_distributable(asked, local_cluster(2))
    assert asked.plan.members == 2
    plain = check_spec(spec_file(tmp_path, CANCER), workers=True)
    check_distributable(plain, local_cluster(2))
    assert not plain.plan.additions


def ensemble_plan(members: int = 3, ensemble: str = "packed", embedding: str = "periodic") -> Any:
    text = "task: multiclass\ndata: {source: x, label: y}\n"
    text += f"model: {{members: {members}, numeric_embedding: {embedding}, ensemble: {ensemble}, "
    text += "layers: [{units: 8}]}\n"
    labels = Labels("integer", ("y",), ("a", "b", "c"))
    return make_plan(parse_spec(text, Path(".")).spec, {"output": labels})


def ensemble_part(rows: int = 90) -> Chunk:
    rng = np.random.default_rng(0)
    x = {
        "a": rng.normal(size=(rows, 1)).astype("float32"),
        "b": rng.normal(size=(rows, 1)).astype("float32"),
        "shop": rng.choice(["north", "south"], size=(rows, 1)).astype(str),
    }
    return chunk_of(x, {"output": rng.integers(0, 3, rows)}, ("a", "b"))


def assert_reloads_without_taskfit(models: Any, part: Chunk, mean: Any, folder: Path) -> None:
    """The saved file loads with no custom objects and predicts the members' mean."""
    models.named.save(folder / "model.keras")
    reloaded = keras.saving.load_model(folder / "model.keras")
    np.testing.assert_allclose(
        reloaded.predict(named_inputs(part.named(("a", "b"))), verbose=0),
        mean,
        rtol=1e-5,
        atol=1e-6,
    )


def test_the_saved_model_outputs_the_members_mean_and_loads_without_taskfit(
    tmp_path: Path,
) -> None:
    part = ensemble_part()
    models = build_model(ensemble_plan(), ("a", "b"), ("shop",), part)
    assert models.members is not None
    stacked = np.asarray(models.members.predict(models.pack(part), verbose=0))
    assert stacked.shape == (90, 3, 3)
    assert not np.allclose(stacked[:, 0], stacked[:, 1])  # each member has weights of its own
    mean = models.named.predict(named_inputs(part.named(("a", "b"))), verbose=0)
    np.testing.assert_allclose(mean, stacked.mean(axis=1), rtol=1e-5, atol=1e-6)
    # one packed network: every member's periodic embedding and body weights on a member axis
    body = models.fit.get_layer("body")
    assert isinstance(body, keras.Sequential)
    assert body.get_layer("dense_1").kernel.shape == (3, 2 * 16 + 3, 8)  # 2 numbers, shop
    assert models.fit.get_layer("periodic").kernel.shape == (2, 3, 32, 16)  # column, member
    assert_reloads_without_taskfit(models, part, mean, tmp_path)


def test_the_embeddings_settings_are_the_specs_and_shape_the_model() -> None:
    embedding = "{name: periodic, frequencies: 4, sigma: 0.01, units: 8}"
    plan = ensemble_plan(embedding=embedding)
    assert plan.embedding.params == {"frequencies": 4, "sigma": 0.01, "units": 8}
    models = build_model(plan, ("a", "b"), ("shop",), ensemble_part())
    frequencies = np.asarray(models.fit.get_layer("frequencies").kernel)
    assert frequencies.shape == (2, 3 * 4)  # column, every member's frequencies
    assert np.abs(frequencies).max() < 0.06  # drawn at scale 0.01 (0.1 by default)
    assert models.fit.get_layer("periodic").kernel.shape == (2, 3, 2 * 4, 8)
    # one setting given, the others the table's
    assert ensemble_plan(embedding="{name: periodic, units: 8}").embedding.params == {
        **SMALL.embeddings["periodic"].defaults(),
        "units": 8,
    }


def test_tabm_mini_members_share_every_hidden_weight_and_load_without_taskfit(
    tmp_path: Path,
) -> None:
    part = ensemble_part()
    plan = ensemble_plan(ensemble="tabm_mini")
    models = build_model(plan, ("a", "b"), ("shop",), part)
    assert models.members is not None
    stacked = np.asarray(models.members.predict(models.pack(part), verbose=0))
    assert stacked.shape == (90, 3, 3)
    assert not np.allclose(stacked[:, 0], stacked[:, 1])  # each member scales its input
    body = models.fit.get_layer("body")
    width = 2 * 16 + 3  # 2 embedded numbers, shop
    assert body.get_layer("member_scaling").kernel.shape == (3, width)
    assert body.get_layer("dense_1").kernel.shape == (width, 8)  # one kernel for all members
    assert body.get_layer("output").kernel.shape == (3, 8, 3)  # an output layer each
    assert models.fit.get_layer("periodic").kernel.shape == (2, 32, 16)  # one embedding
    packed = build_model(ensemble_plan(), ("a", "b"), ("shop",), part)
    assert models.fit.count_params() < packed.fit.count_params() / 2
    mean = models.named.predict(named_inputs(part.named(("a", "b"))), verbose=0)
    np.testing.assert_allclose(mean, stacked.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert_reloads_without_taskfit(models, part, mean, tmp_path)
    assert plan.additions[0] == "3 members (TabM-mini: shared hidden layers)"


def test_the_piecewise_encoding_fills_each_bin_up_to_the_value() -> None:
    """PLE (Gorishniy et al. 2022): 1 for each bin below the value, its share of the bin it is
    in, 0 above; the first bin unbounded below and the last above. A column of one bin keeps it
    in the last place, a constant column encodes to zeros."""
    from taskfit.model.ensemble import piecewise_encoding

    x = np.array([-1.0, 0.5, 1.5, 3.0, 5.0], dtype="float32")
    edges = [np.array([0.0, 1.0, 2.0, 4.0]), np.array([0.0, 2.0]), np.array([5.0])]
    got = np.asarray(piecewise_encoding(np.stack([x, x, x], axis=1), edges))
    assert got.shape == (5, 3, 3)
    three_bins = [[-1, 0, 0], [0.5, 0, 0], [1, 0.5, 0], [1, 1, 0.5], [1, 1, 1.5]]
    np.testing.assert_allclose(got[:, 0], three_bins)
    np.testing.assert_allclose(
        got[:, 1], [[0, 0, 0], [0, 0, 0.25], [0, 0, 0.75], [0, 0, 1.5], [0, 0, 2.5]]
    )
    np.testing.assert_allclose(got[:, 2], np.zeros((5, 3)))


def test_the_piecewise_embedding_bins_the_training_quantiles_as_the_network_sees_them(
    tmp_path: Path,
) -> None:
    from taskfit.feed.cells import Columns
    from taskfit.feed.scan import feature_stats
    from taskfit.model.build import numeric_edges

    part = ensemble_part()
    plan = ensemble_plan(ensemble="tabm_mini", embedding="{name: piecewise, bins: 4, units: 8}")
    assert plan.embedding.params == {"bins": 4, "units": 8}
    assert "piecewise-linear numeric embedding" in plan.additions
    stats = feature_stats(Columns(("a", "b"), ("shop",), plan.heads), part)
    edges = numeric_edges(plan, stats, 2)
    for column, found in enumerate(edges):
        values = part.numeric[:, column]
        wanted = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])  # 4 bins of equal share
        standardised = (wanted - values.mean()) / values.std()
        np.testing.assert_allclose(found, standardised, rtol=1e-4, atol=1e-5)
    # smooth clipping bends the edges as it bends the values
    clipped = dataclasses.replace(
        plan, clipping=dataclasses.replace(plan.clipping, name="smooth", params={"bound": 0.5})
    )
    bent = numeric_edges(clipped, stats, 2)
    assert all(np.abs(e).max() < 0.5 for e in bent)
    np.testing.assert_allclose(bent[0], edges[0] / np.sqrt(1 + (edges[0] / 0.5) ** 2), rtol=1e-5)
    models = build_model(plan, ("a", "b"), ("shop",), part)
    assert models.fit.get_layer("piecewise_linear").kernel.shape == (2, 8)
    bends = np.asarray(models.fit.get_layer("piecewise").kernel)
    assert bends.shape == (2, 4, 8) and not bends.any()  # starts as the linear embedding
    body = models.fit.get_layer("body")
    assert body.get_layer("member_scaling").kernel.shape == (3, 2 * 8 + 3)  # one embedding
    assert models.members is not None
    stacked = np.asarray(models.members.predict(models.pack(part), verbose=0))
    mean = models.named.predict(named_inputs(part.named(("a", "b"))), verbose=0)
    np.testing.assert_allclose(mean, stacked.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert_reloads_without_taskfit(models, part, mean, tmp_path)


def test_each_member_starts_as_a_network_of_its_own_would() -> None:
    """Keras counts a kernel's leading member axis into Glorot's fans: unscaled, each member
    would start sqrt(members) times smaller than the same Dense layer alone."""
    models = build_model(ensemble_plan(members=3), ("a", "b"), ("shop",), ensemble_part())
    kernel = np.asarray(models.fit.get_layer("body").get_layer("dense_1").kernel)
    inputs, units = kernel.shape[1:]
    limit = np.sqrt(6 / (inputs + units))  # glorot_uniform's bound for one (inputs, units) layer
    for member in kernel:
        assert np.abs(member).max() <= limit
        assert member.std() == pytest.approx(limit / np.sqrt(3), rel=0.15)
    assert not np.allclose(kernel[0], kernel[1])
    # the periodic embedding's Dense: each member's slice as the one member's layer starts
    alone = build_model(ensemble_plan(members=1), ("a", "b"), ("shop",), ensemble_part())
    one = np.asarray(alone.fit.get_layer("periodic").kernel)  # (column, sin/cos, units)
    packed = np.asarray(models.fit.get_layer("periodic").kernel)  # (column, member, ...)
    for k in range(3):
        assert packed[:, k].std() == pytest.approx(one.std(), rel=0.15)


def test_one_member_with_the_periodic_embedding_is_the_plain_body_after_it() -> None:
    part = ensemble_part()
    models = build_model(ensemble_plan(members=1), ("a", "b"), ("shop",), part)
    assert models.members is None  # one member: the plain training path
    names = [layer.name for layer in models.fit.layers]
    assert {"frequencies", "periodic", "body"} <= set(names)
    assert models.fit.get_layer("body").input_shape == (None, 2 * 16 + 3)  # 2 numbers, shop
    # categories only: nothing to embed, the body takes the one-hot columns as they are
    shop_alone = dataclasses.replace(part, numeric=part.numeric[:, :0])
    only_shop = build_model(ensemble_plan(members=1), (), ("shop",), shop_alone)
    assert "periodic" not in [layer.name for layer in only_shop.fit.layers]


def test_each_member_gets_its_own_loss_and_the_metrics_see_their_mean() -> None:
    from taskfit.model.ensemble import PackedEnsemble
    from taskfit.model.optim import make_loss, make_metrics, make_optimizer

    part, plan = ensemble_part(), ensemble_plan()
    models = build_model(plan, ("a", "b"), ("shop",), part)
    trained = PackedEnsemble(models.members)
    trained.compile(
        optimizer=make_optimizer(plan), loss=make_loss(plan.head), metrics=make_metrics(plan.head)
    )
    loss, accuracy = trained.evaluate(models.pack(part), part.target, verbose=0)
    stacked = np.asarray(models.members.predict(models.pack(part), verbose=0))
    by_member = [
        float(
            keras.losses.sparse_categorical_crossentropy(part.target, stacked[:, k]).numpy().mean()
        )
        for k in range(3)
    ]
    assert loss == pytest.approx(np.mean(by_member), rel=1e-4)
    mean = stacked.mean(axis=1)
    assert loss != pytest.approx(  # not the loss of the mean
        float(keras.losses.sparse_categorical_crossentropy(part.target, mean).numpy().mean()),
        rel=1e-4,
    )
    assert accuracy == pytest.approx(np.mean(mean.argmax(axis=1) == part.target))


def test_a_replayed_fit_runs_its_epochs_at_the_logged_rates(tmp_path: Path) -> None:
    checked = check_spec(tiny_spec(tmp_path, "binary", epochs=50), ONE_PLAIN_BODY)
    splits = make_splits(checked).joined()
    assert splits.sizes()["validation"] == 0 and len(splits.part(TRAIN)) == 48  # 60 less 12 test
    rates = [0.01, 0.003, 0.0009]
    keras.utils.set_random_seed(0)  # op determinism is on: alone, nothing else seeds it
    fitted = fit_plan(keras, checked, checked.plan, splits, replay=Replay(3, rates))
    assert fitted.epochs == 3 and "val_loss" not in fitted.history
    rate = fitted.trained.optimizer.learning_rate
    assert float(keras.ops.convert_to_numpy(rate)) == pytest.approx(rates[-1])


def test_train_refits_on_train_and_validation_and_says_so(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=8)
    # two members: the default count only costs time here (the embedding is a default)
    command = ["train", str(spec), "--output", str(tmp_path / "runs"), "--json"]
    result = runner.invoke(
        app, [*command, "--set", "model.members=2", "--set", "training.refit=true"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    run = Path(doc["run_dir"])
    facts = json.loads((run / "run.json").read_text())
    kept = doc["best_epoch"] or doc["epochs"]
    assert doc["refit"]["epochs"] == facts["refit"]["epochs"] == kept
    assert doc["refit"]["rows"] == facts["rows"]["train"] + facts["rows"]["validation"] == 48
    resolved = yaml.safe_load((run / "spec.resolved.yaml").read_text())
    assert resolved["training"]["refit"] is True and resolved["model"]["members"] == 2
    added = ", ".join(additions_text(2, SMALL.numeric_embedding, True, SMALL.ensemble))
    assert f"# additions: {added}" in (run / "spec.resolved.yaml").read_text()
    from taskfit.report.report import read_report

    assert read_report(run).choices["additions"] == added
    # the saved model is the refit's, and its loss is the members' mean's: `evaluate` on the
    # test rows gives the run's test metrics
    test = make_splits(check_spec(run / "spec.resolved.yaml")).part(TEST)
    lines = ["a,b,y"] + [
        f"{a:.3f},{b:.3f},{int(y)}" for (a, b), y in zip(test.numeric, test.target, strict=True)
    ]
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    out = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "test.csv"), "--json"])
    assert out.exit_code == 0, out.output
    evaluated = json.loads(out.stdout)["metrics"]
    same = {k: v for k, v in doc["metrics"].items() if k in evaluated_names(doc["metrics"])}
    assert evaluated == pytest.approx(same, rel=1e-4)
    predicted = runner.invoke(app, ["predict", str(run), str(tmp_path / "test.csv")])
    assert predicted.exit_code == 0, predicted.output
    assert predicted.stdout.splitlines()[0] == "predicted_y,probability_0,probability_1"
    assert len(predicted.stdout.splitlines()) == 13


class _Sigint(keras.callbacks.Callback):
    """Presses Ctrl-C at the first batch."""

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        signal.raise_signal(signal.SIGINT)


def test_ctrl_c_during_the_refit_keeps_the_first_model_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = check_spec(tiny_spec(tmp_path, "binary", epochs=3), REFIT_ONE_PLAIN_BODY)
    assert checked.plan.refit
    splits = make_splits(checked)
    real = feeding.fit_callbacks

    def pressed_in_the_refit(feed: Splits) -> list[Any]:  # the refit's parts have no validation
        return [_Sigint()] if not feed.sizes()["validation"] else real(feed)

    monkeypatch.setattr(feeding, "fit_callbacks", pressed_in_the_refit)
    first = fit_plan(keras, checked, checked.plan, splits)
    kept, warning = refit(keras, checked, splits, first, 0)
    assert kept is first and kept.refit is None
    assert warning == (
        "Ctrl-C during the refit on train + validation; kept the model fitted on the training "
        "split alone"
    )
