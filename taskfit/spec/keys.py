"""The task spec's keys, as frozen dataclasses: each key once, with its default, its range and
the line `taskfit docs` and the JSON Schema print for it (taskfit.config.schema reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskfit.config.params import Param
from taskfit.config.schema import Choice, key
from taskfit.recipe.table import TARGET_TRANSFORMS, TASKS
from taskfit.spec.lossform import LossSpec

TEST_FRACTION = 0.2  # data.test_fraction, unless the run is bagged


def target_transform_key() -> Any:
    """`data.target_transform` and `heads.<name>.target_transform`: one key in two places."""
    return key(
        "auto",
        doc="regression: the scale the label is learned on (log, log1p, none); auto: log for a "
        "right-skewed label above 0, by recipes/regression.yaml's rule. Metrics and predictions "
        "stay in the label's units",
        param=Param("str", choices=("auto", "none", *TARGET_TRANSFORMS)),
    )


# threshold: the choices made on held-out rows, and the score each maximises
THRESHOLD_CHOICES = {"auto": "accuracy", "f1": "f1"}
THRESHOLD_RANGE = Param("float", gt=0, lt=1)  # a threshold as given, and as run.json keeps it


def threshold_key() -> Any:
    """`data.threshold` and `heads.<name>.threshold`: one key in two places."""
    return key(
        None,
        doc="binary: the probability of the positive class above which a row is called "
        "positive (default: 0.5, as Keras's accuracy); auto: the cut of best accuracy on "
        "held-out rows, f1: of best F1 for the positive class (chosen after calibration). "
        "predict, evaluate and serve use it; the probabilities stay as they are",
        param=(THRESHOLD_RANGE, Param("str", choices=tuple(THRESHOLD_CHOICES))),
    )


@dataclass(frozen=True)
class LayerSpec:
    units: int = key(doc="width of the Dense layer", param=Param("int", ge=1))
    activation: str = key("relu", doc="Keras activation name", names="activations")
    dropout: float = key(0.0, doc="Dropout rate after the layer", param=Param("float", ge=0, lt=1))


@dataclass(frozen=True)
class OutputSpec:
    units: int | str = key("auto", doc="auto: from the table (1, or one per class)")
    activation: str = key(
        "auto", doc="auto: from the table (sigmoid, softmax, linear)", names="activations"
    )


@dataclass(frozen=True)
class ModelSpec:
    layers: tuple[LayerSpec, ...] | None = key(
        None,
        doc="hidden layers in order (default: the small-table layers on a small table, else the "
        "task's row)",
    )
    output: OutputSpec = key(OutputSpec(), doc="the output layer; leave it to the table")
    head_layers: tuple[LayerSpec, ...] = key(
        (), doc="heads only: hidden layers of each head, after the shared layers"
    )
    sharing: Choice = key(
        Choice("hard"),
        doc="heads only: hard (one trunk of `layers` for every head), soft (a tower of `layers` "
        "per head, drawn together by an L2 penalty of `strength`) or mmoe (`experts` networks "
        "of `layers`, mixed by a softmax gate per head)",
        names="sharings",
    )
    members: int | None = key(
        None,
        doc="copies of the body trained side by side, each with its own loss; the model "
        "outputs their mean (default: the table's count on a small table, else 1)",
        param=Param("int", ge=1),
    )
    ensemble: str | None = key(
        None,
        doc="with several members, packed: each member has its own weights in every layer; "
        "tabm_mini: the members share the hidden layers, each scaling their input by its own "
        "vector and having its own output layer (TabM-mini, Gorishniy et al. 2025) (default: "
        "the table's)",
        param=Param("str", choices=("packed", "tabm_mini")),
    )
    numeric_clipping: Choice | None = key(
        None,
        doc="smooth: each standardised numeric input x becomes x / sqrt(1 + (x / bound)**2), "
        "near x within a few standard deviations and never beyond bound (3; {name: smooth, "
        "bound: 5} sets it) (RealMLP, Holzmueller et al. 2024); none: as is (default: the "
        "table's on a small table)",
        names="clippings",
    )
    numeric_embedding: Choice | None = key(
        None,
        doc="periodic: each numeric column as sin/cos of learned frequencies, then a Dense "
        "layer ({name: periodic, sigma: 0.03} sets its params); piecewise: a linear embedding "
        "plus a learned map of the column's piecewise-linear encoding over quantile bins "
        "({name: piecewise, bins: 48}); none: the standardised number as is (default: the "
        "table's on a small table)",
        names="embeddings",
    )


@dataclass(frozen=True)
class DataSpec:
    source: str = key(doc="a bundled dataset's name, or a CSV path relative to the spec")
    label: str | tuple[str, ...] | None = key(
        None, doc="the label column; for one-hot labels a list of columns (heads: on each head)"
    )
    features: tuple[str, ...] | None = key(None, doc="input columns; default: every other column")
    ignore: tuple[str, ...] = key((), doc="columns to leave out")
    numeric: tuple[str, ...] = key((), doc="columns to treat as numbers (default: inferred)")
    categorical: tuple[str, ...] = key(
        (), doc="columns to treat as categories, e.g. integer codes (default: inferred)"
    )
    dates: tuple[str, ...] = key(
        (),
        doc="columns to read as dates, each in one format such as 2024-03-15 or 3/15/2024 "
        "(default: a column whose every cell is a date); the model sees the elapsed time and "
        "month, weekday and day of year as cycles",
    )
    text: tuple[str, ...] = key(
        (),
        doc="columns of free text, encoded as TF-IDF of words and word pairs inside the model "
        "(default: a column of mostly distinct cells, 3 or more words each)",
    )
    positive: str | int | bool | None = key(
        None,
        doc="binary: the label value of the positive class (default: 1, true, yes, or the "
        "second value in sorted order)",
    )
    classes: tuple[str | int, ...] | None = key(
        None, doc="class names in output order (default: the label values, sorted)"
    )
    threshold: float | str | None = threshold_key()
    target_transform: str = target_transform_key()
    test_fraction: float | None = key(
        None,
        doc=f"held-out test split (default: {TEST_FRACTION}; 0 for a bagged run "
        "(training.bagging), every row of which trains the model: its metrics are then "
        "out-of-fold)",
        param=Param("float", ge=0, lt=1),
    )
    validation_fraction: float = key(
        0.2, doc="validation split, taken from the training part", param=Param("float", ge=0, lt=1)
    )
    streaming: bool | None = key(
        None,
        doc="read the CSV in chunks, never whole in memory (default: on above 256 MiB); types "
        "and labels come from its first 20000 rows",
    )


@dataclass(frozen=True)
class ReduceLrSpec:
    factor: float = key(
        0.3, doc="multiply the rate by this at each cut", param=Param("float", gt=0, lt=1)
    )
    patience: int = key(4, doc="epochs without improvement before a cut", param=Param("int", ge=0))
    min_lr: float = key(1e-5, doc="the rate is never cut below this", param=Param("float", ge=0))


@dataclass(frozen=True)
class EarlyStoppingSpec:
    # 6, not 10: on bench_quality's eight tables and six seeds (2026-12-07) 45 of the 48 runs
    # kept the same best epoch, and so the same model, in 14% fewer epochs; the other three came
    # 0.1-0.6% RMSE worse (docs/benchmarks.md). Above reduce_lr's 4, so a cut rate gets 2 epochs.
    patience: int = key(
        6, doc="epochs without improvement before stopping", param=Param("int", ge=0)
    )
    monitor: str = key("val_loss", doc="the logged quantity to watch")
    min_delta: float = key(0.0, doc="smallest change that counts", param=Param("float", ge=0))
    restore_best_weights: bool = key(True, doc="keep the best epoch's weights")
    reduce_lr: ReduceLrSpec | None = key(
        ReduceLrSpec(),
        doc="the table's advice on a plateau: cut the learning rate before stopping (Keras's "
        "ReduceLROnPlateau on the same quantity); null turns it off; off when a schedule sets "
        "the rate",
    )


@dataclass(frozen=True)
class TrackingSpec:
    mlflow: str | None = key(
        None,
        doc="an MLflow tracking URI (sqlite:///mlflow.db, a folder, http://host:5000): the "
        "finished run is logged there (the mlflow extra)",
    )
    experiment: str | None = key(None, doc="the MLflow experiment (default: the run's name)")


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = key(
        200,
        doc="most passes over the training split; early stopping ends most runs far sooner",
        param=Param("int", ge=1),
    )
    batch_size: int | None = key(
        None,
        doc="rows per gradient step (default: from the table's size, recipes/training.yaml; "
        "the optimizer's default learning rate follows it)",
        param=Param("int", ge=1),
    )
    seed: int = key(
        0,
        doc="seeds the split, initial weights and shuffling",
        param=Param("int", ge=0, le=2**32 - 1),  # NumPy's and TensorFlow's seeds are 32-bit
    )
    early_stopping: EarlyStoppingSpec | None = key(
        EarlyStoppingSpec(), doc="stop when val_loss stops improving; null turns it off"
    )
    refit: bool | None = key(
        None,
        doc="after early stopping, train afresh on train + validation for the kept number of "
        "epochs, replaying each epoch's learning rate (default: the table's on a small table)",
    )
    bagging: bool | None = key(
        None,
        doc="with several members: the training and validation rows in as many folds, each "
        "member trained on all but its own fold and scored on it; early stopping and the "
        "validation metrics then read those out-of-fold scores (default: on with the table's "
        "members on a small table)",
    )
    tensorboard: bool = key(False, doc="write TensorBoard logs to <run folder>/tensorboard")
    tracking: TrackingSpec | None = key(
        None, doc="log the run to an experiment tracker: {mlflow: URI} (train --mlflow URI)"
    )
    class_weight: str | dict[Any, float] | None = key(
        None,
        doc="balanced (weights inverse to class frequency in training) or {class name: weight}",
        param=Param("str", choices=("balanced",)),
    )


# `name` starts a folder name: up to 255 bytes on every common file system, of which the UTC
# time, -2 to -999 for runs in the same second and -smoke or -tune take 27. A first . would
# hide the folder (`..` made `..-<time>`) and a first - reads as an option in a shell.
NAME = Param(
    "str",
    max_length=200,
    pattern=(r"(?s)[A-Za-z0-9_].*", "starting with A-Z, a-z, 0-9 or _ (not . or -)"),
)

SINGLE_HEAD = "output"  # a spec with one task has one head, named as its Keras output layer
AUTO_LOSS = LossSpec.named("auto")
LOSS_DOC = (
    "auto: the table's loss for the label format; or a name, {name: ..., params}, "
    "{blend: [{loss, weight}, ...]} or {schedule: [{loss or blend, until_epoch}, ...]}"
)


@dataclass(frozen=True)
class HeadSpec:
    """One output of a model with several: its own label, task, loss and weight."""

    task: str = key(doc="the kind of label", param=Param("str", choices=TASKS))
    label: str | tuple[str, ...] = key(doc="the label column; for one-hot labels a list")
    loss: LossSpec = key(AUTO_LOSS, doc=LOSS_DOC, names="losses")
    loss_weight: float = key(
        1.0, doc="this head's share of the total loss (fixed weighting)", param=Param("float", ge=0)
    )
    metrics: str | tuple[str, ...] = key("auto", doc="auto: the table's metrics; or Keras names")
    positive: str | int | bool | None = key(None, doc="binary: the positive class's label value")
    classes: tuple[str | int, ...] | None = key(None, doc="class names in output order")
    threshold: float | str | None = threshold_key()
    layers: tuple[LayerSpec, ...] | None = key(
        None, doc="this head's hidden layers; default: model.head_layers"
    )
    target_transform: str = target_transform_key()


@dataclass(frozen=True, kw_only=True)
class Spec:
    task: str | None = key(
        None, doc="the kind of label (or give heads)", param=Param("str", choices=TASKS)
    )
    data: DataSpec = key(doc="where the rows come from")
    heads: dict[str, HeadSpec] | None = key(
        None, doc="several outputs instead of one task: head name -> its task, label, loss"
    )
    loss_weighting: Choice = key(
        Choice("fixed"),
        doc="heads: fixed (loss_weight), uncertainty (learned), dwa (from loss ratios), pcgrad "
        "(conflicting gradients projected apart) or gradnorm (learned from gradient norms)",
        names="weightings",
    )
    name: str | None = key(
        None,
        doc="names the run folder: the name, then the UTC time; any character but A-Z, a-z, "
        "0-9, _, . and - becomes - there (default: the spec file's name)",
        param=NAME,
    )
    model: ModelSpec = key(ModelSpec(), doc="the network between input and output")
    loss: LossSpec = key(AUTO_LOSS, doc=LOSS_DOC, names="losses")
    optimizer: Choice = key(
        Choice("adam"), doc="a name takes Keras defaults; a mapping sets params", names="optimizers"
    )
    schedule: Choice | None = key(
        None, doc="a learning-rate schedule for the optimizer", names="schedules"
    )
    metrics: str | tuple[str, ...] = key("auto", doc="auto: the table's metrics; or Keras names")
    training: TrainingSpec = key(TrainingSpec(), doc="how long and how to fit")
    strict: bool = key(True, doc="false: contradictions with the table warn instead of failing")
