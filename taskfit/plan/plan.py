"""The plan: every choice the table made for a spec and its labels (taskfit.plan.make makes it),
as frozen data that the model, training, the run folder (plan.json) and the reports read."""

from __future__ import annotations

from dataclasses import dataclass, field

from taskfit.data.labels import Labels
from taskfit.plan.choices import Built, LossPlan
from taskfit.plan.outputs import several
from taskfit.recipe.table import load_table
from taskfit.spec.keys import THRESHOLD_CHOICES, LayerSpec


@dataclass(frozen=True)
class Head:
    """One output: its labels, output layer, loss and metrics. A spec with one task has one head,
    named SINGLE_HEAD; a spec with `heads` has one per entry."""

    name: str
    task: str
    labels: Labels
    layers: tuple[LayerSpec, ...]  # the head's own hidden layers (none for a single task)
    output_units: int
    output_activation: str
    loss: LossPlan
    onehot_targets: bool  # integer labels are one-hot encoded for a loss that needs them
    metrics: tuple[str, ...]
    weight: float = 1.0  # fixed loss weight
    # "balanced", or class index -> weight; None: every class weighs the same (one task only)
    class_weight: str | dict[int, float] | None = None
    # regression: the scale the label is learned on (log, log1p; taskfit.data.targets), and why
    target_transform: str = "none"
    target_reason: str = ""
    # binary: the cut on the positive class's probability (a number), or how it is chosen on
    # held-out rows (auto: for accuracy, f1); None: 0.5, Keras's
    threshold: float | str | None = None

    @property
    def target_text(self) -> str:
        """`log (every label above 0, ...)`: the scale a regression label is learned on."""
        if self.task != "regression":
            return ""
        scale = self.target_transform
        said = f"{scale} ({self.target_reason})" if self.target_reason else scale
        if scale == "none":
            return said
        return f"{said}: the loss is on that scale, metrics and predictions in the label's units"

    @property
    def threshold_text(self) -> str:
        """How a binary head's classes are cut ("" for the default 0.5)."""
        if self.threshold is None:
            return ""
        if isinstance(self.threshold, str):
            score = THRESHOLD_CHOICES[self.threshold].replace("f1", "F1")
            return f"{self.threshold}: the cut of best {score} on held-out rows, after training"
        return f"{self.threshold:g} on the probability of {self.labels.classes[1]}"

    @property
    def output_text(self) -> str:
        """`Dense(3, softmax)`: the output layer in words."""
        act = "" if self.output_activation == "linear" else f", {self.output_activation}"
        return f"Dense({self.output_units}{act})"


HARD_SHARING = Built("hard", "hard", {})  # one trunk: model.sharing's default
# model.numeric_embedding and model.numeric_clipping: none, the numbers as they are (off a
# small table)
AS_IS = Built("none", "none", {})


@dataclass(frozen=True)
class Plan:
    heads: tuple[Head, ...]
    layers: tuple[LayerSpec, ...]  # hidden layers: the body (one task) or the shared trunk
    optimizer: Built
    schedule: Built | None
    weighting: Built  # fixed, uncertainty, dwa, pcgrad or gradnorm
    warnings: tuple[str, ...] = field(default=())
    batch_size: int = 32  # training.batch_size, or the table's rule for the table's size
    # the small-table additions (recipes/small_tables.yaml), resolved from the spec and the data
    members: int = 1  # copies of the body, each with its own loss; the model outputs their mean
    ensemble: str = "packed"  # how several members hold their weights: packed or tabm_mini
    # how numeric columns reach the network (model.numeric_embedding), with its parameters
    embedding: Built = field(default=AS_IS)
    # how standardised numeric inputs are bounded (model.numeric_clipping), with its parameters
    clipping: Built = field(default=AS_IS)
    refit: bool = False  # after early stopping, train afresh on train + validation
    # the members each held out of their own fold of train + validation (taskfit.feed.folds)
    bagging: bool = False
    test_fraction: float = 0.2  # data.test_fraction, resolved: 0 for a bagged run
    # heads: how they share `layers` (model.sharing): hard, soft or mmoe, with its parameters
    sharing: Built = field(default=HARD_SHARING)

    @property
    def additions(self) -> list[str]:
        """The small-table additions in force, in words."""
        return additions_text(
            self.members,
            self.embedding.name,
            self.refit,
            self.ensemble,
            bagging=self.bagging,
            clipping=self.clipped,
        )

    @property
    def periodic(self) -> bool:
        """Numeric columns go through the periodic embedding (its settings: embedding.params)."""
        return self.embedding.name == "periodic"

    @property
    def piecewise(self) -> bool:
        """Numeric columns go through the piecewise-linear embedding (embedding.params)."""
        return self.embedding.name == "piecewise"

    @property
    def clipped(self) -> bool:
        """Standardised numeric inputs are smoothly clipped (at clipping.params["bound"])."""
        return self.clipping.name == "smooth"

    @property
    def multi(self) -> bool:
        """Several heads (the spec gives `heads`): a model with named outputs."""
        return several(self.heads)

    @property
    def learned_weights(self) -> bool:
        """The heads' loss weights change in training (uncertainty, dwa, gradnorm), rather than
        being each head's loss_weight."""
        return not load_table().weightings[self.weighting.name].fixed_weights

    @property
    def head(self) -> Head:
        """The one head of a single-task plan."""
        if self.multi:
            raise ValueError("this plan has several heads")
        return self.heads[0]

    @property
    def stratify_by(self) -> str | None:
        """The head whose classes the split keeps in proportion: the first classifier."""
        return next((h.name for h in self.heads if h.task != "regression"), None)


def additions_text(
    members: int,
    embedding: str,
    refit: bool,
    ensemble: str = "packed",
    *,
    bagging: bool = False,
    clipping: bool = False,
) -> list[str]:
    shared = " (TabM-mini: shared hidden layers)" if ensemble == "tabm_mini" else ""
    out = [f"{members} members{shared}"] if members > 1 else []
    out += [f"bagged: each member trained on {members - 1} of {members} folds"] if bagging else []
    out += ["smooth clipping of numeric inputs"] if clipping else []
    words = {"piecewise": "piecewise-linear"}.get(embedding, embedding)
    out += [f"{words} numeric embedding"] if embedding != "none" else []
    return out + (["refit on train + validation"] if refit else [])


def plan_summary(plan: Plan) -> str:
    """The table's choices in one comment block, for spec.resolved.yaml and `check`."""
    optimizer = f"optimizer: {plan.optimizer.name}" + (
        f" with {plan.schedule.name}" if plan.schedule else ""
    )
    if not plan.multi:
        head = plan.head
        added = f"\nadditions: {', '.join(plan.additions)}" if plan.additions else ""
        return (
            f"labels: {head.labels.describe()} ({head.labels.format})\n"
            f"output: {head.output_text}; loss: {head.loss.summary}; "
            f"metrics: {', '.join(head.metrics)}; {optimizer}{added}"
        )
    lines = [
        f"{h.name}: {h.task}, {h.labels.describe()} ({h.labels.format}); output: "
        f"{h.output_text}; loss: {h.loss.summary}; metrics: {', '.join(h.metrics)}"
        for h in plan.heads
    ]
    weighting = f"loss weighting: {described(plan.weighting)}"
    sharing = f"sharing: {described(plan.sharing)}"
    return "\n".join([*lines, f"{sharing}; {weighting}; {optimizer}"])


def described(choice: Built) -> str:
    """`soft (strength 0.001)`: a choice and its parameters, in words."""
    params = ", ".join(f"{k} {v:g}" for k, v in choice.params.items())
    return f"{choice.name} ({params})" if params else choice.name
