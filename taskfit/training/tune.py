"""`taskfit tune SPEC --trials N`: a KerasTuner random search over the table's advice (optimizer,
learning rate, schedule, width, dropout, the row's other losses; recipes/tuning.yaml), each
trial scored on the validation split only. Writes the trials and the best trial's spec.

A trial is the spec with a few keys overridden, checked against the table like any spec, and
fitted exactly as `train` fits it (same split, seed and early stopping); the test split is
never touched, so it still measures the chosen spec fairly afterwards.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit import progress
from taskfit.errors import SpecError, Terminated, TrainingError
from taskfit.plan.checking import Checked, check_spec, planned
from taskfit.plan.plan import Plan
from taskfit.recipe.table import Tuning, higher_is_better, load_table
from taskfit.runfolder.files import create_run_dir, write_json, write_text, write_yaml
from taskfit.runfolder.layout import TuneFolder
from taskfit.spec.spec import Overrides, SpecSource, load_spec, spec_stem, then


@dataclass(frozen=True)
class Trial:
    number: int  # 1-based, in the order they ran
    choices: dict[str, Any]  # what the search picked (optimizer, learning_rate, ...)
    score: float  # the objective on the validation split, at the epoch whose weights were kept
    epochs: int
    seconds: float


@dataclass(frozen=True)
class Tuned:
    folder: Path  # trials.csv, best.yaml, tune.json
    objective: str  # e.g. val_accuracy
    higher_is_better: bool
    trials: list[Trial]
    best: Trial

    def document(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "objective": self.objective,
            "direction": "max" if self.higher_is_better else "min",
            "best": self.best.number,
            "best_spec": str(TuneFolder(self.folder).best),
            # a diverged trial's score is null: JSON has no NaN
            "trials": [
                {**t.__dict__, "score": t.score if math.isfinite(t.score) else None}
                for t in self.trials
            ],
        }


def tune(
    spec_path: SpecSource,
    trials: int,
    overrides: Overrides | None = None,
    output: str | Path = "runs",
    *,
    deterministic: bool = False,
) -> Tuned:
    """`deterministic`: as taskfit.training.run.train's. Ctrl-C or SIGTERM, in a trial or
    between trials, ends the search: the trials that finished are written, and it re-raises
    (the CLI exits 130 or 143, as train does)."""
    from taskfit.errors import signals_interrupt

    with signals_interrupt():
        return _tune(spec_path, trials, overrides, output, deterministic)


def _tune(
    spec_path: SpecSource,
    trials: int,
    overrides: Overrides | None,
    output: str | Path,
    deterministic: bool,
) -> Tuned:
    if deterministic:
        from taskfit.training.fit import deterministic_ops

        deterministic_ops()
    overrides = dict(overrides or {})
    checked = check_spec(spec_path, overrides)  # the spec's own mistakes first, as in train
    objective = _objective(checked)
    space = load_table().tuning
    from taskfit.model.keras_setup import import_keras
    from taskfit.training.fit import fit_plan, make_splits, seed_everything

    with progress.step("loading TensorFlow"):
        keras = import_keras()
        import keras_tuner
    spec = checked.loaded.spec
    splits = make_splits(checked)  # in memory, or streamed (data.streaming)
    steps = math.ceil(splits.sizes()["train"] / checked.plan.batch_size)  # per epoch
    folder = create_run_dir(Path(output), (spec.name or spec_stem(spec_path)) + "-tune")
    done: list[Trial] = []
    trial_specs: dict[int, Checked] = {}

    def run_trial(hp: Any) -> dict[str, float]:
        choices = pick(hp, space, checked.plan)
        trial = _trial_spec(spec_path, overrides, choices, checked, steps)
        seed_everything(keras, spec.training.seed)
        started = time.perf_counter()
        fitted = fit_plan(keras, trial, trial.plan, splits, verbose=progress.keras_verbose())
        if fitted.interrupted:  # Ctrl-C or SIGTERM ends the search, not one trial
            raise Terminated() if fitted.stopped_by == "SIGTERM" else KeyboardInterrupt()
        values = fitted.history[objective]
        kept = (fitted.best_epoch or len(values)) - 1
        number = len(done) + 1
        seconds = time.perf_counter() - started
        score = float(values[kept])
        done.append(Trial(number, choices, score, len(values), seconds))
        trial_specs[number] = trial
        # a diverged trial (NaN) is the worst there is to KerasTuner, which cannot rank a NaN
        worst = -math.inf if higher_is_better(objective) else math.inf
        return {objective: score if math.isfinite(score) else worst}

    search = _search(keras_tuner, run_trial, objective, trials, folder, spec.training.seed)
    try:
        with contextlib.redirect_stdout(sys.stderr if progress.shown() else io.StringIO()):
            search.search(verbose=progress.keras_verbose())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the finished trials are written, whole
        if any(math.isfinite(t.score) for t in done):
            _written(folder, objective, done, trial_specs)
        raise
    return _written(folder, objective, done, trial_specs)


def _written(
    folder: Path, objective: str, done: list[Trial], trial_specs: dict[int, Checked]
) -> Tuned:
    """trials.csv, tune.json and the best trial's spec (best.yaml), of the trials that ran."""
    better = higher_is_better(objective)
    scored = [t for t in done if math.isfinite(t.score)]
    if not scored:
        raise TrainingError(
            f"every trial's {objective} was NaN: training diverged on each setting tried "
            "(labels of extreme size, or a learning rate far too high); check the labels, or "
            "tune with the learning rate the table gives"
        )
    best = (max if better else min)(scored, key=lambda t: t.score)
    header = f"# taskfit tune: trial {best.number} of {len(done)}, {objective} {best.score:.4g}\n"
    files = TuneFolder(folder)
    write_yaml(files.best, trial_specs[best.number].resolved(), header=header)
    tuned = Tuned(folder, objective, better, done, best)
    write_text(files.trials, trials_csv(done, objective))
    write_json(files.record, tuned.document())
    return tuned


def _objective(checked: Checked) -> str:
    """The task row's first metric on the validation split: comparable across losses, unlike
    val_loss (a huber and an mse loss are different numbers)."""
    plan, spec = checked.plan, checked.loaded.spec
    if plan.multi:
        raise SpecError(
            "tune: searches a spec with one task; this one has heads. Tune each head's task "
            "as a spec of its own, then put the choices into the heads spec"
        )
    if spec.data.validation_fraction <= 0:
        raise SpecError(
            "data.validation_fraction: 0 leaves tune nothing to score trials on (it never "
            "looks at the test split); set it above 0, e.g. 0.2"
        )
    return f"val_{plan.head.metrics[0]}"


def pick(hp: Any, space: Tuning, plan: Plan) -> dict[str, Any]:
    """One point of the space, as KerasTuner's hyperparameters choose it. The defaults are the
    spec's own choices where the space has them, so trial 1 is the spec as written."""
    table = load_table()
    head = plan.head
    optimizers = list(space.optimizers)
    mine = plan.optimizer.name if plan.optimizer.name in optimizers else optimizers[0]
    low, high = space.learning_rate_factor
    rate = plan.optimizer.params.get("learning_rate") or _default_rate(mine)
    losses = list(table.recipe(head.task).losses_for(head.labels.format))
    loss = head.loss.single.name if head.loss.single else None
    optimizer = hp.Choice("optimizer", optimizers, default=mine)
    factor = hp.Float(
        "learning_rate_factor", low, high, sampling="log",
        default=min(max(rate / _default_rate(mine), low), high),
    )  # fmt: skip
    return {
        "optimizer": optimizer,
        # the factor scales each optimizer's own default (sgd's is 10x adam's)
        "learning_rate": float(f"{_default_rate(optimizer) * factor:.3g}"),
        "schedule": hp.Choice("schedule", list(space.schedules), default="none"),
        "width": hp.Choice("width", list(space.width), default=1.0),
        "dropout": hp.Choice("dropout", list(space.dropout), default=0.0),
        "loss": hp.Choice("loss", losses, default=loss if loss in losses else losses[0]),
    }


def _default_rate(optimizer: str) -> float:
    rate: float = load_table().optimizers[optimizer].params["learning_rate"].default
    return rate


def trial_overrides(
    choices: dict[str, Any], plan: Plan, space: Tuning, steps_per_epoch: int, epochs: int
) -> dict[str, Any]:
    """The spec keys a trial sets, with their values."""
    name = choices["optimizer"]
    optimizer = {"name": name, **space.optimizers[name]}
    schedule = None
    settings = space.schedules[choices["schedule"]]
    if settings is None:
        optimizer["learning_rate"] = choices["learning_rate"]
    else:
        lengths = {"epoch": steps_per_epoch, "run": steps_per_epoch * epochs}
        params = {k: lengths.get(v, v) if isinstance(v, str) else v for k, v in settings.items()}
        schedule = {
            "name": choices["schedule"],
            "initial_learning_rate": choices["learning_rate"],
            **params,
        }
    layers = [
        {
            "units": max(1, round(layer.units * choices["width"])),
            "activation": layer.activation,
            "dropout": choices["dropout"],
        }
        for layer in plan.layers
    ]
    keys = {
        "optimizer": optimizer,
        "schedule": schedule,
        "model.layers": layers,
        "loss": choices["loss"],
    }
    return keys


def _trial_spec(
    spec_path: SpecSource,
    overrides: Overrides,
    choices: dict[str, Any],
    checked: Checked,
    steps: int,
) -> Checked:
    """The trial's spec, checked against the table; the data is the spec's own, read once."""
    spec = checked.loaded.spec
    space = load_table().tuning
    extra = trial_overrides(choices, checked.plan, space, steps, spec.training.epochs)
    loaded = load_spec(spec_path, then(overrides, extra))
    return planned(loaded, checked.data)


def _search(kt: Any, run_trial: Any, objective: str, trials: int, folder: Path, seed: int) -> Any:
    """KerasTuner's random search, each trial run by `run_trial` (taskfit's own fit)."""
    direction = "max" if higher_is_better(objective) else "min"

    class TableSearch(kt.RandomSearch):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            return run_trial(trial.hyperparameters)

    return TableSearch(
        objective=kt.Objective(objective, direction),
        max_trials=trials,
        seed=seed,
        directory=str(folder),
        project_name="keras_tuner",
        overwrite=True,
    )


def trials_csv(trials: list[Trial], objective: str) -> str:
    from taskfit.data.csvtable import csv_text

    names = list(trials[0].choices)
    rows = [[t.number, *t.choices.values(), t.score, t.epochs, round(t.seconds, 1)] for t in trials]
    return csv_text(["trial", *names, objective, "epochs", "seconds"], rows)
