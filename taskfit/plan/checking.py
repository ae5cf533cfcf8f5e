"""`check`: the spec, the data and the table, all validated without TensorFlow."""

from __future__ import annotations

import importlib.util
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from taskfit.config.schema import as_data
from taskfit.data.columns import CATEGORICAL, DATE, NUMERIC, RARE, TEXT, memorisable
from taskfit.data.view import DataView, inspect_data
from taskfit.errors import DataError, SpecError
from taskfit.plan.make import make_plan
from taskfit.plan.names import name_clash
from taskfit.plan.plan import Head, Plan
from taskfit.spec.spec import LoadedSpec, Overrides, SpecSource, load_spec


@dataclass(frozen=True)
class Checked:
    loaded: LoadedSpec
    data: DataView
    plan: Plan

    def resolved(self) -> dict[str, Any]:
        """The spec with every default, inferred column type and table choice filled in;
        loadable as a spec again (spec.resolved.yaml)."""
        plan, data = self.plan, self.data
        doc: dict[str, Any] = as_data(self.loaded.spec)
        doc["data"].update(
            source=data.source,
            features=list(data.features),
            numeric=list(data.of_kind(NUMERIC)),
            categorical=list(data.of_kind(CATEGORICAL)),
            dates=list(data.of_kind(DATE)),
            text=list(data.of_kind(TEXT)),
            test_fraction=plan.test_fraction,
        )
        doc["model"]["layers"] = as_data(plan.layers)
        doc["model"]["members"] = plan.members
        # how several members hold their weights; with one there is nothing to say (and a spec
        # with heads that names an ensemble is refused, so --resume of one was)
        doc["model"]["ensemble"] = plan.ensemble if plan.members > 1 else None
        doc["model"]["numeric_embedding"] = plan.embedding.as_yaml()
        doc["model"]["numeric_clipping"] = plan.clipping.as_yaml()
        doc["training"]["refit"] = plan.refit
        doc["training"]["bagging"] = plan.bagging
        doc["training"]["batch_size"] = plan.batch_size
        doc["optimizer"] = plan.optimizer.as_yaml()
        doc["schedule"] = plan.schedule.as_yaml() if plan.schedule else None
        doc["loss_weighting"] = plan.weighting.as_yaml()
        if not plan.multi:
            head = plan.head
            _resolve_head(doc["data"], doc, head)
            doc["model"]["output"] = {
                "units": head.output_units,
                "activation": head.output_activation,
            }
            return doc
        for head in plan.heads:
            _resolve_head(doc["heads"][head.name], doc["heads"][head.name], head)
            doc["heads"][head.name]["layers"] = as_data(head.layers)
        return doc


def _resolve_head(labels: dict[str, Any], choices: dict[str, Any], head: Head) -> None:
    """A head's classes and table choices into its spec sections: for one task `data` and the
    top level, for a head `heads.<name>` both."""
    if head.labels.format in ("binary", "integer"):
        labels["classes"] = list(head.labels.classes)
    if head.labels.format == "binary":
        labels["positive"] = head.labels.classes[1]
    if head.task == "regression":
        labels["target_transform"] = head.target_transform
    choices["loss"] = head.loss.as_yaml()
    choices["metrics"] = list(head.metrics)


# A class under this fraction of an even share gets a note: under 20% of two classes, under 4%
# of ten (ten classes at 10% each are balanced, not skewed).
SKEWED = 0.4


# Keras's default learning rates are 0.001 (adam, rmsprop, adamw) and 0.01 (sgd). Above 1 a step
# can move a weight further than its initial scale, which seldom trains; but Keras takes any
# rate > 0 and a schedule or clipping may tame it, so a note says so rather than a refusal.
HIGH_RATE = 1.0


def _rate_note(plan: Plan) -> list[str]:
    """A note on a learning rate far above Keras's defaults (1e3 for 1e-3 is a slip)."""
    key, rate = (
        ("schedule.initial_learning_rate", plan.schedule.params.get("initial_learning_rate"))
        if plan.schedule
        else ("optimizer.learning_rate", plan.optimizer.params.get("learning_rate"))
    )
    if not isinstance(rate, int | float) or rate <= HIGH_RATE:
        return []
    return [
        f"{key}: {rate:g} is far above Keras's defaults (0.001 for adam, 0.01 for sgd); above "
        f"{HIGH_RATE:g} training seldom converges and the loss may turn NaN: lower it"
    ]


# fewer held-out rows than this: one row's luck moves early stopping and the threshold
FEW_VALIDATION_ROWS = 10


def notes(checked: Checked) -> list[str]:
    """What the user should know about the data and settings before trusting the result."""
    data = checked.data
    out = _rate_note(checked.plan)
    if data.streamed:
        out.append(
            f"streaming {data.streamed.name}: column types and labels from its first "
            f"{data.table.n_rows} rows; the split is by a hash of the row number, not stratified"
        )
    for column, share in memorisable(data.columns).items():
        out.append(
            f"column {column}: {share:.0%} of its rows hold a value seen at most {RARE} times, "
            "which the network can learn by heart; if val_loss rises early on, data.ignore it "
            "or merge its rare values"
        )
    validation_fraction = checked.loaded.spec.data.validation_fraction
    held_out = data.streamed is None and not checked.plan.bagging and validation_fraction > 0
    validation_rows = split_sizes(checked.plan, checked.loaded, data)[1] if held_out else None
    if validation_rows == 0:
        out.append(
            f"the validation split is empty ({validation_fraction:g} of each class rounds "
            "to no row): early stopping has nothing to watch, so every epoch runs"
        )
    elif validation_rows is not None and validation_rows < FEW_VALIDATION_ROWS:
        out.append(
            f"the validation split holds {validation_rows} row(s) (data.validation_fraction "
            f"{validation_fraction:g}): early stopping, the calibration and a chosen threshold "
            "rest on so few; raise data.validation_fraction"
        )
    out += _untested_classes(checked.plan, data)
    for head in checked.plan.heads:
        labels = head.labels
        column = labels.columns[0]
        if labels.missing_rows:
            within = f" of the first {data.table.n_rows}" if data.streamed else ""
            out.append(f"{len(labels.missing_rows)}{within} rows have no {column} label: left out")
        if labels.format not in ("binary", "integer"):
            continue
        if checked.loaded.spec.training.class_weight is not None:
            continue
        counts = Counter(data.table.cells[column][i] for i in data.rows)
        even = len(data.rows) / len(labels.classes)
        rare = [c for c in labels.classes if counts[c] < SKEWED * even]
        if rare:
            shares = ", ".join(f"{c} {counts[c] / len(data.rows):.0%}" for c in rare)
            focal = "binary" if labels.format == "binary" else "categorical"
            fix = (
                f"heads.{head.name}.loss: {focal}_focal_crossentropy"
                if checked.plan.multi
                else f"training.class_weight: balanced, or loss: {focal}_focal_crossentropy"
            )
            out.append(f"skewed classes in {column} ({shares} of the labels): consider {fix}")
    return out


def _untested_classes(plan: Plan, data: DataView) -> list[str]:
    """A note when the test split will hold no row of a class (each class is cut by
    round(count * test_fraction)): its test metrics say nothing of that class, and a binary
    head's AUC has no positive or no negative to rank."""
    counts = _class_counts(plan, data) if plan.test_fraction > 0 and not data.streamed else None
    absent = [str(c) for c, n in (counts or {}).items() if round(n * plan.test_fraction) == 0]
    if not absent:
        return []
    head = next(h for h in plan.heads if h.name == plan.stratify_by)
    return [
        f"column {head.labels.columns[0]}: the test split holds no row of {', '.join(absent)} "
        f"(data.test_fraction {plan.test_fraction:g} of too few rows); the test metrics say "
        "nothing about it. Give more rows of it, or raise data.test_fraction"
    ]


def check_spec(
    path: SpecSource, overrides: Overrides | None = None, workers: bool = False
) -> Checked:
    """Everything `train` validates before it loads TensorFlow; raises TaskfitError.
    `workers`: several processes fit it (train --workers), so the small-table defaults are off."""
    loaded = load_spec(path, overrides)
    if loaded.spec.training.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise SpecError(
            "training.tensorboard: needs the tensorboard package, which is not installed. "
            "Install it with: pip install 'taskfit[tensorboard]' (or set it to false)"
        )
    tracking = loaded.spec.training.tracking
    if tracking is not None and tracking.mlflow and importlib.util.find_spec("mlflow") is None:
        raise SpecError(
            "training.tracking.mlflow: needs the mlflow package, which is not installed. "
            "Install it with: pip install 'taskfit[mlflow]' (or leave tracking out)"
        )
    return planned(loaded, inspect_data(loaded), workers)


def planned(loaded: LoadedSpec, data: DataView, workers: bool = False) -> Checked:
    """The spec's plan for this data. The small-table defaults are for a table in memory that
    one process fits (their measured gain is on tables of that size)."""
    rows = len(data.rows) if data.streamed is None else None
    plan = make_plan(loaded.spec, data.labels, rows, not workers)
    if plan.bagging and (rows is None or workers):
        how = "fitted by several processes" if workers else "streamed (data.streaming)"
        raise SpecError(
            f"training.bagging: deals a table held in memory into folds; this one is {how}. "
            "Set bagging: false."
        )
    clash = name_clash(data.features, [h.name for h in plan.heads], plan.multi)
    if clash:
        raise DataError(f"{data.table.path}: {clash}")
    _check_size(plan, len(data.features))
    if data.streamed is None:  # a streamed file is split by a hash of the row, as it comes
        _check_splits(plan, loaded, data)
    return Checked(loaded, data, plan)


def split_sizes(plan: Plan, loaded: LoadedSpec, data: DataView) -> tuple[int, int]:
    """The training and validation rows of a table in memory, counted as the split will draw
    them (taskfit.feed.memory: each class cut by round(count * fraction))."""
    counts = _class_counts(plan, data)
    validation_fraction = 0.0 if plan.bagging else loaded.spec.data.validation_fraction
    train = validation = 0
    for count in counts.values() if counts else [len(data.rows)]:
        rest = count - round(count * plan.test_fraction)
        validation += round(rest * validation_fraction)
        train += rest - round(rest * validation_fraction)
    return train, validation


def _class_counts(plan: Plan, data: DataView) -> Counter[Any] | None:
    """Rows per class of the label the split keeps in proportion; None for regression."""
    head = next((h for h in plan.heads if h.name == plan.stratify_by), None)
    if head is None:
        return None
    column = head.labels.columns[0]
    return Counter(data.table.cells[column][i] for i in data.rows)


def _check_splits(plan: Plan, loaded: LoadedSpec, data: DataView) -> None:
    """What the split leaves to train on, before TensorFlow loads: 0.95 of 20 rows held out
    left no training row; 500 classes on 600 rows trained to 0% accuracy."""
    rows = len(data.rows)
    counts = _class_counts(plan, data)
    if counts is not None:
        single = [c for c, count in counts.items() if count == 1]
        column = next(h for h in plan.heads if h.name == plan.stratify_by).labels.columns[0]
        if len(counts) == 2 and single:  # one of two classes: nothing to learn it from
            raise SpecError(
                f"column {column}: the class {single[0]} has a single row among {rows} "
                "labelled rows; a class needs rows to learn from and rows to be checked on. "
                "Give more rows of it, or check the label column"
            )
        if len(single) * 2 > len(counts):
            raise SpecError(
                f"column {column}: {len(single)} of its {len(counts)} classes have a single row "
                f"among {rows} labelled rows; a class needs rows to learn from and rows to be "
                "checked on. Merge the rare classes, or give more rows (is it an identifier?)"
            )
    if split_sizes(plan, loaded, data)[0] == 0:
        validation = loaded.spec.data.validation_fraction
        key, share = (  # the key that holds out more names the problem
            ("data.validation_fraction", validation)
            if not plan.bagging and validation > plan.test_fraction
            else ("data.test_fraction", plan.test_fraction)
        )
        raise SpecError(
            f"{key}: {share:g} held out leaves none of the {rows} labelled rows to train on "
            f"(data.test_fraction {plan.test_fraction:g} for testing, then "
            f"data.validation_fraction {validation:g} of the rest); lower "
            "data.test_fraction or data.validation_fraction"
        )


# float32 copies a fit holds of each weight: the weight, its gradient, Adam's two moments
COPIES = 4


def _check_size(plan: Plan, features: int) -> None:
    """A model whose weights alone would not fit in this machine's memory is refused before
    TensorFlow loads (a layer of ten billion units ended in an out-of-memory traceback). A lower
    bound: each input column counted as one feature; packed members each hold every layer,
    TabM-mini members share the hidden layers and hold an input scaling and an output layer."""
    memory = _memory_bytes()
    if memory is None:
        return
    width, hidden = features, 0
    for layer in plan.layers:
        hidden += (width + 1) * layer.units
        width = layer.units
    # the shared layers' copies: one trunk, a tower per head (soft), or experts (mmoe) with a
    # gate per head
    sharing = plan.sharing
    if sharing.name == "soft":
        hidden *= len(plan.heads)
    elif sharing.name == "mmoe":
        experts = int(sharing.params.get("experts", 1))
        hidden = hidden * experts + len(plan.heads) * (features + 1) * experts
    output = 0
    for head in plan.heads:
        head_width = width
        for layer in head.layers:
            hidden += (head_width + 1) * layer.units
            head_width = layer.units
        output += (head_width + 1) * head.output_units
    if plan.ensemble == "tabm_mini":
        weights = hidden + plan.members * (features + output)
    else:
        weights = plan.members * (hidden + output)
    needed = weights * 4 * COPIES
    if needed <= memory:
        return
    one_member = (hidden + output) * 4 * COPIES <= memory
    if one_member:
        key, fix = "model.members", "use fewer members"
    elif sharing.name == "mmoe" and experts > 2:
        key, fix = "model.sharing.experts", "use fewer experts"
    else:
        key, fix = "model.layers", "use layers of fewer units"
    members = f"{plan.members} members, " if plan.members > 1 else ""
    raise SpecError(
        f"{key}: {members}about {weights:.3g} weights, {needed / 2**30:.3g} GiB with their "
        f"gradients and the optimizer's state, more than this machine's "
        f"{memory / 2**30:.3g} GiB of memory; {fix}"
    )


def _memory_bytes() -> int | None:
    """Physical memory, where the system says (POSIX); None elsewhere."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None
