"""What it would take for an MLP to come within 2 points of gradient boosting on a table where
taskfit's default does not (`hpc_data`).

On taskfit's own splits (bench_quality's rows, seeds 0..5 by default), a plain Keras MLP shaped
like taskfit's default is trained with three additions, alone and together, and scored against
HistGradientBoosting fitted on train + validation, as in bench_quality:

- periodic: each numeric column becomes sin/cos of 16 learned frequencies, then its own Dense(16,
  relu) (Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular Deep Learning",
  PLR);
- members: 3 copies of the body in one model, each with its own loss on the same batches, their
  probabilities averaged (a packed ensemble; averaging the outputs before one loss lost a point);
- refit: after early stopping, a fresh model trains on train + validation for the kept number of
  epochs, replaying the learning rate of each epoch (the plateau cuts included).

The base: log1p on taskfit's heavy-tailed columns, median fill + missing indicators, standardised
numbers, one-hot categories, Dense 128-64 relu, softmax, adam 1e-3, batch 32, early stopping on
val_loss (patience 10, best weights) and the plateau cut (0.3, patience 4, min 1e-5).

    .venv/bin/python bench/bench_mlp_variants.py [--datasets hpc_data] [--seeds 0 1 2 3 4 5]

Prints a markdown table (accuracy per seed, mean, mean gap to HistGB, training seconds relative to
the base) and writes bench/results/mlp_variants.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import (
    DATASETS,
    RESULTS,
    fitting_frames,
    frame,
    markdown,
    one_hot_categories,
    run_histgb,
    taskfit_splits,
    write_inputs,
)
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from taskfit.data.columns import CATEGORICAL, NUMERIC
from taskfit.feed.splits import Splits
from taskfit.feed.stats import heavy_tailed
from taskfit.plan.checking import check_spec

CLASSIFICATION = [name for name, d in DATASETS.items() if d.task != "regression"]
FREQUENCIES, EMBEDDING, SIGMA = 16, 16, 0.1  # PLR: frequencies and width per column, init scale
EPOCHS, PATIENCE, BATCH = 100, 10, 32


@dataclass(frozen=True)
class Variant:
    name: str
    periodic: bool = False
    members: int = 1
    refit: bool = False


VARIANTS = [
    Variant("base (taskfit's default, by hand)"),
    Variant("+ periodic", periodic=True),
    Variant("+ refit", refit=True),
    Variant("+ periodic + refit", periodic=True, refit=True),
    Variant("+ periodic + 3 members", periodic=True, members=3),
    Variant("+ periodic + 3 members + refit", periodic=True, members=3, refit=True),
]


def features(splits: Splits, numeric: tuple[str, ...], cats: tuple[str, ...]) -> Any:
    """Train, validation, train + validation and test matrices; numbers first (`numeric` wide).
    Fitted on train, except the refit matrix, fitted on train + validation as a refit would."""
    train = frame(splits.train, numeric, cats)
    skewed = heavy_tailed(train[list(numeric)].to_numpy(np.float64)) if numeric else []
    logged = [numeric[i] for i in skewed]

    def prep() -> ColumnTransformer:
        numbers = make_pipeline(
            ColumnTransformer(
                [("log", FunctionTransformer(np.log1p), logged)], remainder="passthrough"
            ),
            SimpleImputer(strategy="median"),
            StandardScaler(),
        )
        indicators = SimpleImputer(strategy="median", add_indicator=True)
        return ColumnTransformer(
            [
                ("numeric", numbers, list(numeric)),
                ("gaps", make_pipeline(indicators, _only_indicators(len(numeric))), list(numeric)),
                ("categorical", one_hot_categories(), list(cats)),
            ],
            sparse_threshold=0.0,
        )

    assert splits.validation is not None
    fit_x, _, test_x = fitting_frames(splits, numeric, cats)
    first = prep().fit(train)
    both = prep().fit(fit_x)
    validation = frame(splits.validation, numeric, cats)
    return (
        first.transform(train).astype(np.float32),
        first.transform(validation).astype(np.float32),
        both.transform(fit_x).astype(np.float32),
        first.transform(test_x).astype(np.float32),
        both.transform(test_x).astype(np.float32),
    )


def _only_indicators(width: int) -> FunctionTransformer:
    return FunctionTransformer(lambda m: m[:, width:])


def build(keras: Any, variant: Variant, width: int, numeric: int, classes: int) -> Any:
    """One model; with members, one output (and loss) per member."""
    inputs = keras.Input((width,))
    numbers, rest = inputs[:, :numeric], inputs[:, numeric:]
    outputs = []
    for member in range(variant.members):
        x = inputs
        if variant.periodic and numeric:
            init = keras.initializers.RandomNormal(stddev=SIGMA)
            waves = keras.layers.EinsumDense(
                "bf,fk->bfk", (numeric, FREQUENCIES), kernel_initializer=init
            )(numbers)
            waves = waves * (2 * np.pi)
            both = keras.ops.concatenate([keras.ops.sin(waves), keras.ops.cos(waves)], axis=-1)
            embedded = keras.layers.EinsumDense(
                "bfk,fkd->bfd", (numeric, EMBEDDING), bias_axes="fd", activation="relu"
            )(both)
            x = keras.layers.Concatenate()([keras.layers.Flatten()(embedded), rest])
        for units in (128, 64):
            x = keras.layers.Dense(units, activation="relu")(x)
        outputs.append(
            keras.layers.Dense(classes, activation="softmax", name=f"member_{member}")(x)
        )
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), ["sparse_categorical_crossentropy"] * len(outputs))
    return model


def probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    out = model.predict(x, verbose=0)
    return np.mean(out, axis=0) if isinstance(out, list) else out


def run_variant(
    keras: Any, variant: Variant, matrices: Any, splits: Splits, numeric: int, seed: int
) -> tuple[float, float]:
    """(test accuracy, training seconds)."""
    train, validation, refit_x, test, refit_test = matrices
    assert splits.validation is not None
    y_train, y_val = splits.train.target, splits.validation.target
    classes = int(max(y_train.max(), y_val.max(), splits.test.target.max())) + 1
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = build(keras, variant, train.shape[1], numeric, classes)
    members = variant.members
    stopping = [
        keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(factor=0.3, patience=4, min_lr=1e-5),
    ]
    history = model.fit(
        train,
        [y_train] * members,
        validation_data=(validation, [y_val] * members),
        epochs=EPOCHS,
        batch_size=BATCH,
        callbacks=stopping,
        verbose=0,
    ).history
    if variant.refit:
        kept = int(np.argmin(history["val_loss"])) + 1
        rates = [float(r) for r in history["learning_rate"][:kept]]
        keras.utils.set_random_seed(seed)
        model = build(keras, variant, refit_x.shape[1], numeric, classes)
        y_both = np.concatenate([y_train, y_val])
        replay = keras.callbacks.LearningRateScheduler(lambda epoch, _rate: rates[epoch])
        model.fit(
            refit_x,
            [y_both] * members,
            epochs=kept,
            batch_size=BATCH,
            callbacks=[replay],
            verbose=0,
        )
        test = refit_test
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(probabilities(model, test).argmax(axis=1) == splits.test.target))
    return accuracy, seconds


def measure(name: str, seeds: list[int]) -> dict[str, Any]:
    from taskfit.model.keras_setup import import_keras

    keras = import_keras()
    dataset = DATASETS[name]
    scores: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    seconds: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    histgb: list[float] = []
    with tempfile.TemporaryDirectory(prefix="taskfit-variants-") as tmp:
        spec, _ = write_inputs(dataset, Path(tmp))
        checked = check_spec(spec)
        view = checked.data
        numeric, cats = view.of_kind(NUMERIC), view.of_kind(CATEGORICAL)
        for seed in seeds:
            splits = taskfit_splits(checked, seed)
            histgb.append(run_histgb(splits, dataset.task, numeric, cats).value)
            matrices = features(splits, numeric, cats)
            for variant in VARIANTS:
                accuracy, took = run_variant(keras, variant, matrices, splits, len(numeric), seed)
                scores[variant.name].append(accuracy)
                seconds[variant.name].append(took)
                print(f"{name} seed {seed} {variant.name}: {accuracy:.4f}", file=sys.stderr)
    return {"dataset": name, "seeds": seeds, "histgb": histgb, "scores": scores, "seconds": seconds}


def table(result: dict[str, Any]) -> str:
    seeds, histgb = result["seeds"], np.array(result["histgb"])
    base = sum(result["seconds"][VARIANTS[0].name])
    headers = ["model", *(f"seed {s}" for s in seeds), "mean", "mean gap to HistGB", "time"]
    rows = [
        [
            "HistGB (train + validation)",
            *(f"{100 * v:.1f}" for v in histgb),
            f"{100 * histgb.mean():.2f}",
            "",
            "",
        ]
    ]
    for variant in VARIANTS:
        values = np.array(result["scores"][variant.name])
        gaps = 100 * (histgb - values)
        relative = sum(result["seconds"][variant.name]) / base
        rows.append(
            [
                variant.name,
                *(f"{100 * v:.1f}" for v in values),
                f"{100 * values.mean():.2f}",
                f"{gaps.mean():+.2f} points (worst {gaps.max():+.1f})",
                f"{relative:.1f}x",
            ]
        )
    return markdown(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=CLASSIFICATION, default=["hpc_data"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    args = parser.parse_args()
    results = [measure(name, args.seeds) for name in args.datasets]
    for result in results:
        print(f"\n{result['dataset']}: test accuracy (%) on taskfit's splits\n")
        print(table(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mlp_variants.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
