"""Model parity with hand-written Keras, and every optimizer/schedule/config built for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import chunk_of

from taskfit.data.labels import Labels
from taskfit.feed.chunk import TRAIN
from taskfit.feed.stats import fill_missing, log_scale
from taskfit.model.build import build_body, build_model, named_inputs
from taskfit.model.optim import make_loss, make_optimizer
from taskfit.plan.checking import check_spec
from taskfit.plan.make import make_plan
from taskfit.plan.plan import Plan
from taskfit.recipe.table import load_table
from taskfit.spec.spec import parse_spec
from taskfit.training.fit import make_splits

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def plan_for(task: str, labels: Labels, extra: str = "") -> Plan:
    spec = parse_spec(f"task: {task}\ndata: {{source: x, label: y}}\n{extra}", Path(".")).spec
    return make_plan(spec, {"output": labels})


def by_hand(task: str) -> keras.Sequential:
    """The three plain Keras models (configs/binary, multiclass, regression), as by hand."""
    layers = keras.layers
    if task == "binary":
        return keras.Sequential(
            [
                keras.Input((100,)),
                layers.Dense(64, activation="relu"),
                layers.Dense(32, activation="relu"),
                layers.Dense(1, activation="sigmoid"),
            ]
        )
    if task == "multiclass":
        return keras.Sequential(
            [
                keras.Input((784,)),
                layers.Dense(128, activation="relu"),
                layers.Dense(64, activation="relu"),
                layers.Dense(10, activation="softmax"),
            ]
        )
    return keras.Sequential(
        [
            keras.Input((13,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(1),
        ]
    )


def dense_stack(model: keras.Model) -> list[tuple[int, str]]:
    return [
        (layer.units, layer.activation.__name__)
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize(
    ("task", "labels", "width", "params", "loss"),
    [
        ("binary", Labels("binary", ("y",), ("0", "1")), 100, 8_577, "BinaryCrossentropy"),
        (
            "multiclass",
            Labels("integer", ("y",), tuple(map(str, range(10)))),
            784,
            109_386,
            "SparseCategoricalCrossentropy",
        ),
        ("regression", Labels("real", ("y",)), 13, 3_009, "MeanSquaredError"),
    ],
)
def test_models_match_the_same_models_written_by_hand(
    task: str, labels: Labels, width: int, params: int, loss: str
) -> None:
    ours = build_body(plan_for(task, labels), width)
    theirs = by_hand(task)
    assert isinstance(ours, keras.Sequential)
    assert dense_stack(ours) == dense_stack(theirs)
    assert trainable(ours) == trainable(theirs) == params
    assert type(make_loss(plan_for(task, labels).head)).__name__ == loss


def test_regression_output_is_scaled_back_to_label_units() -> None:
    plan = plan_for("regression", Labels("real", ("y",)))
    y = (100 + 20 * np.random.default_rng(0).normal(size=50)).astype("float32")
    model = build_body(plan, 3, target=(float(y.mean()), float(y.std())))
    scale = model.get_layer("target_scale")
    assert scale.scale == pytest.approx(float(y.std()))
    assert scale.offset == pytest.approx(float(y.mean()))
    assert trainable(model) == (3 * 64 + 64) + (64 * 32 + 32) + 33


def test_constant_training_columns_do_not_explode() -> None:
    plan = plan_for("binary", Labels("binary", ("y",), ("0", "1")))
    columns = {"a": np.zeros((3, 1), "float32"), "b": np.array([[1.0], [2.0], [3.0]], "float32")}
    models = build_model(
        plan, ("a", "b"), (), chunk_of(columns, {"output": np.array([0.0, 1.0, 0.0])}, ("a", "b"))
    )
    normalized = models.fit.get_layer("normalization")(np.array([[5.0, 2.0]], dtype="float32"))
    assert np.abs(np.asarray(normalized)).max() < 10


@pytest.mark.parametrize("name", list(load_table().optimizers))
def test_every_optimizer_is_built_with_its_parameters(name: str) -> None:
    labels = Labels("binary", ("y",), ("0", "1"))
    optimizer = make_optimizer(
        plan_for("binary", labels, f"optimizer: {{name: {name}, clipnorm: 1.0}}\n")
    )
    assert type(optimizer).__name__ == load_table().optimizers[name].keras_class
    assert optimizer.clipnorm == 1.0


@pytest.mark.parametrize("name", list(load_table().schedules))
def test_every_schedule_drives_the_learning_rate(name: str) -> None:
    item = load_table().schedules[name]
    settings = ", ".join(f"{k}: {v}" for k, v in (item.example or {}).items())
    labels = Labels("binary", ("y",), ("0", "1"))
    optimizer = make_optimizer(
        plan_for("binary", labels, f"schedule: {{name: {name}, {settings}}}\n")
    )
    schedule = optimizer._learning_rate
    assert type(schedule).__name__ == item.keras_class
    assert float(schedule(5000)) < float(schedule(0))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_checks_and_builds(config: Path) -> None:
    checked = check_spec(config)
    data = checked.data
    models = build_model(
        checked.plan,
        data.of_kind("numeric"),
        data.of_kind("categorical"),
        make_splits(checked).part(TRAIN, 50),
    )
    heads = checked.plan.heads
    models.fit.compile(
        optimizer=make_optimizer(checked.plan),
        loss={h.name: make_loss(h) for h in heads} if checked.plan.multi else make_loss(heads[0]),
    )
    if checked.plan.multi:  # a functional model with one named output per head
        assert {k: v.shape[-1] for k, v in models.named.output.items()} == {
            h.name: h.output_units for h in heads
        }
    else:  # one task: the table's keras.Sequential is the body
        assert models.named.output_shape == (None, heads[0].output_units)
        assert isinstance(models.fit.get_layer("body"), keras.Sequential)
    assert sorted(models.named.input) == sorted(data.features)


def test_fill_missing_uses_training_medians_and_flags_gaps() -> None:
    plan = plan_for("binary", Labels("binary", ("y",), ("0", "1")))
    columns = {
        "a": np.array([[1.0], [np.nan], [3.0], [5.0]], "float32"),
        "b": np.array([[10.0], [20.0], [30.0], [40.0]], "float32"),
    }
    models = build_model(
        plan,
        ("a", "b"),
        (),
        chunk_of(columns, {"output": np.zeros(4)}, ("a", "b")),
        frozenset({"a"}),
    )
    # a's median over its three values is 3, b's is 25; only a had gaps in the data, so only a
    # gets a "was missing" column; a gap that first shows up at predict time is filled too
    normalization = models.fit.get_layer("normalization")
    assert normalization.mean.shape[-1] == 3
    fill = np.array([3.0, 25.0], "float32")
    out = np.asarray(fill_missing(np.array([[np.nan, np.nan], [2.0, 7.0]], "float32"), fill, [0]))
    np.testing.assert_allclose(out, [[3.0, 25.0, 1.0], [2.0, 7.0, 0.0]])
    gappy = {"a": np.array([[np.nan]], "float32"), "b": np.array([[np.nan]], "float32")}
    assert np.isfinite(models.named.predict(named_inputs(gappy), verbose=0)).all()


def test_many_categories_get_an_embedding() -> None:
    plan = plan_for("binary", Labels("binary", ("y",), ("0", "1")))
    names = np.array([[f"shop{i % 40}"] for i in range(80)])
    models = build_model(
        plan, (), ("shop",), chunk_of({"shop": names}, {"output": np.zeros(80)}, ())
    )
    embedding = models.fit.get_layer("shop_embedding")
    assert embedding.input_dim == 41  # 40 shops + the out-of-vocabulary slot
    assert models.named.predict(named_inputs({"shop": names[:3]}), verbose=0).shape == (3, 1)


def test_heavy_tailed_columns_are_log_scaled_inside_the_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    counts = rng.lognormal(mean=3, sigma=2, size=(200, 1)).astype("float32")  # 0 .. 10^4+
    columns = {
        "count": counts,
        "plain": rng.normal(size=(200, 1)).astype("float32"),
        "small": rng.integers(0, 17, size=(200, 1)).astype("float32"),
    }
    plan = plan_for("binary", Labels("binary", ("y",), ("0", "1")))
    models = build_model(
        plan,
        ("count", "plain", "small"),
        (),
        chunk_of(columns, {"output": np.zeros(200)}, ("count", "plain", "small")),
    )
    assert models.log_scaled == ("count",)
    out = np.asarray(log_scale(np.array([[np.e - 1, -3.0, 5.0]], "float32"), [0]))
    np.testing.assert_allclose(out, [[1.0, -3.0, 5.0]], rtol=1e-6)
    # only Keras's own operations: a plain load_model in a fresh process restores it
    models.named.save(tmp_path / "m.keras")
    code = (
        f"import keras; m = keras.saving.load_model({str(tmp_path / 'm.keras')!r}); "
        "import sys; sys.exit(0 if not any('taskfit' in k for k in sys.modules) else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_category_ids_are_what_string_lookup_gives() -> None:
    """The JAX workers look categories up before the model: the same ids as StringLookup."""
    from taskfit.model.build import category_ids

    vocabulary = ["", "oslo", "paris", "rome"]
    cells = np.array([["rome"], [""], ["berlin"], ["oslo"], ["zurich"]], dtype=object)
    lookup = keras.layers.StringLookup(vocabulary=vocabulary)
    expected = np.asarray(lookup(cells.astype(str)))
    np.testing.assert_array_equal(category_ids(cells, vocabulary), expected)
    assert category_ids(cells, []).tolist() == [[0]] * 5  # nothing known: all out of vocabulary
