"""Keras's naming of a model's outputs, in one place.

Keras gives a model with one output a bare tensor, and logs `loss`, `accuracy`; a model with
several takes and returns dicts keyed by output name, and logs `<output>_loss`,
`<output>_accuracy` after the weighted total `loss`. A single task is one head, named
SINGLE_HEAD; everything in taskfit handles heads as a dict by name, and these functions turn
that dict into the form Keras takes (targets, losses, metrics, outputs) and back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from taskfit.plan.plan import Head

T = TypeVar("T")


def several(heads: Sequence[Head]) -> bool:
    """Keras names outputs, and prefixes what it logs, only when a model has several."""
    return len(heads) > 1


def keras_form(heads: Sequence[Head], by_head: Mapping[str, T]) -> T | dict[str, T]:
    """Head name -> value, as Keras takes it: the dict itself, or one head's value alone."""
    if several(heads):
        return {head.name: by_head[head.name] for head in heads}
    return by_head[heads[0].name]


def by_head(heads: Sequence[Head], output: Any) -> dict[str, Any]:
    """What a model returns (a dict by head, or one head's tensor) -> head name -> value. A
    dict with one entry comes from a model whose output layer carries its head's name."""
    if isinstance(output, Mapping):
        return dict(output) if several(heads) else {heads[0].name: next(iter(output.values()))}
    return {heads[0].name: output}


def logged(head: str, quantity: str, *, multi: bool) -> str:
    """What Keras logs of one output: `<output>_<quantity>` among several, the quantity alone
    for one. taskfit's own per-head columns (the loss in force, learned weights, predicted
    probabilities) follow the same rule."""
    return f"{head}_{quantity}" if multi else quantity


def head_logged(head: Head, multi: bool) -> list[str]:
    """What Keras logs of one head each epoch on the training split: its loss and metrics."""
    return [logged(head.name, q, multi=multi) for q in ("loss", *head.metrics)]


def logged_names(heads: Sequence[Head]) -> list[str]:
    """What Keras logs each epoch on the training split (validation adds a val_ prefix)."""
    multi = several(heads)
    names = ["loss"] if multi else []  # several heads: the weighted total comes first
    for head in heads:
        names += head_logged(head, multi)
    return names


SHARING_PENALTY = "sharing_penalty"  # soft sharing: the towers' penalty in the loss, per epoch


def gate_logged(head: str, expert: int) -> str:
    """mmoe: the column of head's mean gate weight on expert number `expert` (from 1)."""
    return f"{head}_gate_{expert}"
