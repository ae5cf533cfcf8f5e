"""`loss:` in each of its forms, read into one shape: stages of weighted terms.

    loss: huber                                   one stage, one term
    loss: {name: huber, delta: 2.0}               the same, with a parameter
    loss: {blend: [{loss: mse, weight: 0.7},      one stage, several terms:
                   {loss: mae, weight: 0.3}]}       0.7 * mse + 0.3 * mae
    loss: {schedule: [{loss: mse, until_epoch: 10},
                      {loss: huber, delta: 1.0}]} mse for epochs 1-10, then huber

A schedule's stages may be blends, so blend weights can follow a schedule too. Standard library
only: `check` validates every form without TensorFlow.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from taskfit.config.params import Param, show
from taskfit.config.schema import Choice

if TYPE_CHECKING:
    from taskfit.config.schema import Builder
    from taskfit.config.yamlfile import PathKey

WEIGHT = Param("float", ge=0, required=True)  # required: null is not a weight
UNTIL = Param("int", ge=1)


@dataclass(frozen=True)
class LossTerm:
    choice: Choice  # a loss name from the table (or auto) and its parameters
    weight: float = 1.0
    path: tuple[Any, ...] = field(default=(), compare=False)  # where the spec names it


@dataclass(frozen=True)
class LossStage:
    terms: tuple[LossTerm, ...]
    until_epoch: int | None = None  # the stage's last epoch (1-based); None: to the end


@dataclass(frozen=True)
class LossSpec:
    stages: tuple[LossStage, ...]
    raw: Any = field(default="auto", compare=False)  # as the user wrote it
    type_name: ClassVar[str] = (
        "a loss name or {name: ..., params}, {blend: [...]}, {schedule: [...]}"
    )

    @classmethod
    def named(cls, name: str) -> LossSpec:
        return cls((LossStage((LossTerm(Choice(name)),)),), name)

    @property
    def is_auto(self) -> bool:
        return self.single is not None and self.single.name == "auto"

    @property
    def single(self) -> Choice | None:
        """The one loss, when this is neither a blend nor a schedule."""
        if len(self.stages) == 1 and len(self.stages[0].terms) == 1:
            return self.stages[0].terms[0].choice
        return None

    def terms(self) -> list[LossTerm]:
        return [term for stage in self.stages for term in stage.terms]

    def as_yaml(self) -> Any:
        return self.raw

    @classmethod
    def parse(cls, b: Builder, value: Any, path: PathKey) -> LossSpec | None:
        """The Builder's hook for this type: every problem goes to `b`, with its path."""
        before = len(b.problems.items)
        stages: tuple[LossStage, ...] | None
        if isinstance(value, Mapping) and "schedule" in value:
            stages = _schedule(b, value, path)
        elif isinstance(value, Mapping) and "blend" in value:
            only = _only_key(b, value, "blend", path)
            blend = _blend(b, value["blend"], (*path, "blend"))
            stages = (LossStage(blend),) if only and blend else None
        else:
            choice = b.choice(value, path)
            stages = (LossStage((LossTerm(choice, path=path),)),) if choice else None
        if stages is None or len(b.problems.items) > before:
            return None
        return cls(stages, value)


def _only_key(b: Builder, value: Mapping[str, Any], name: str, path: PathKey) -> bool:
    extra = [k for k in value if k != name]
    if extra:
        b.add(
            (*path, extra[0]),
            f"a {name} takes only `{name}: [...]`; parameters go with each loss inside it",
        )
    return not extra


def _term(b: Builder, value: Any, path: PathKey, weighted: bool) -> LossTerm | None:
    """`{loss: huber, delta: 1.0}`, or with `weight:` inside a blend."""
    if not isinstance(value, Mapping) or not isinstance(value.get("loss"), str):
        example = "{loss: mse, weight: 0.7}" if weighted else "{loss: mse, until_epoch: 10}"
        b.add(path, f"must be a mapping with a `loss` name, e.g. {example}. Got {show(value)}.")
        return None
    params = {k: v for k, v in value.items() if k not in ("loss", "weight", "until_epoch")}
    weight = 1.0
    if weighted:
        if "weight" not in value:
            b.add(path, "needs `weight:` (a number >= 0), e.g. {loss: mse, weight: 0.7}")
            return None
        if problem := WEIGHT.check(value["weight"]):
            b.add((*path, "weight"), problem)
            return None
        weight = float(value["weight"])
    elif "weight" in value:
        b.add((*path, "weight"), "weighs a loss inside a blend; a single loss has no weight")
        return None
    return LossTerm(Choice(value["loss"], params), weight, path)


def _blend(b: Builder, value: Any, path: PathKey) -> tuple[LossTerm, ...] | None:
    if not isinstance(value, list) or len(value) < 2:
        b.add(path, f"must be a list of two or more weighted losses. Got {show(value)} instead.")
        return None
    terms = [_term(b, item, (*path, i), weighted=True) for i, item in enumerate(value)]
    if any(t is None for t in terms):
        return None
    found = tuple(t for t in terms if t is not None)
    if sum(t.weight for t in found) == 0:
        b.add(path, "has every weight 0; at least one loss must count")
        return None
    return found


def _schedule(b: Builder, value: Mapping[str, Any], path: PathKey) -> tuple[LossStage, ...] | None:
    if not _only_key(b, value, "schedule", path):
        return None
    items, where = value["schedule"], (*path, "schedule")
    if not isinstance(items, list) or len(items) < 2:
        b.add(where, f"must be a list of two or more stages. Got {show(items)} instead.")
        return None
    stages: list[LossStage] = []
    for i, item in enumerate(items):
        stage = _stage(b, item, (*where, i), last=i == len(items) - 1)
        if stage is None:
            return None
        stages.append(stage)
    ends = [s.until_epoch for s in stages[:-1]]
    if any(a is not None and c is not None and a >= c for a, c in itertools.pairwise(ends)):
        b.add(where, f"until_epoch must increase from stage to stage. Got {ends} instead.")
        return None
    return tuple(stages)


def _stage(b: Builder, item: Any, path: PathKey, last: bool) -> LossStage | None:
    until = item.get("until_epoch") if isinstance(item, Mapping) else None
    if isinstance(item, Mapping) and "blend" in item:
        extra = [k for k in item if k not in ("blend", "until_epoch")]
        if extra:
            b.add((*path, extra[0]), "a blend stage takes `blend` and `until_epoch` only")
            return None
        terms = _blend(b, item["blend"], (*path, "blend"))
    else:
        term = _term(b, item, path, weighted=False)
        terms = (term,) if term else None
    if terms is None:
        return None
    if last and until is not None:
        b.add(
            (*path, "until_epoch"),
            "the last stage runs to the end of training; remove its until_epoch",
        )
        return None
    if not last:
        if until is None:
            b.add(path, "needs `until_epoch:` (its last epoch) - every stage but the last does")
            return None
        if problem := UNTIL.check(until):
            b.add((*path, "until_epoch"), problem)
            return None
    return LossStage(terms, until)
