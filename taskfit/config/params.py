"""Typed parameters with ranges: one checker for spec keys and for the table's Keras parameters.

Messages follow scikit-learn's form: what was expected, then "Got ... instead."
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list[int]": "a list of integers",
    "list[float]": "a list of numbers",
    "list[str]": "a list of strings",
}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # YAML `true` is not a number
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":  # .inf and .nan are YAML floats; no setting means them
        return isinstance(value, int | float) and math.isfinite(value)
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("list["):
        inner = kind[5:-1]
        return isinstance(value, list) and all(_is_type(v, inner) for v in value)
    raise ValueError(f"unknown parameter type {kind!r}")


SHOWN = 100  # characters of a value a message quotes; a whole pasted document helps no one


def show(value: Any) -> str:
    """A value as the user wrote it in YAML."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


@dataclass(frozen=True)
class Param:
    """A typed value with optional bounds; `check` returns the problem, or None."""

    type: str
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    default: Any = None
    required: bool = False
    doc: str = ""

    @classmethod
    def from_table(cls, row: Mapping[str, Any]) -> Param:
        fields = dict(row)
        if "choices" in fields:
            fields["choices"] = tuple(fields["choices"])
        return cls(**fields)

    def expected(self) -> str:
        text = _TYPE_NAMES[self.type]
        if self.choices:
            return "one of " + ", ".join(self.choices)

        def shown(bound: float) -> str:
            return str(int(bound)) if self.type == "int" else f"{bound:g}"

        signs = ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
        bounds = [f"{sign} {shown(bound)}" for sign, bound in signs if bound is not None]
        return text + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value: Any) -> str | None:
        if value is None and not self.required and self.default is None:
            return None
        ok = _is_type(value, self.type)
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.type in ("int", "float"):
            ok = (
                (self.gt is None or value > self.gt)
                and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt)
                and (self.le is None or value <= self.le)
            )
        if ok:
            return None
        expected = self.expected()
        if isinstance(value, float) and not math.isfinite(value):
            expected = expected.replace("a number", "a finite number", 1)
        return f"must be {expected}. Got {show(value)} instead."


def suggest(word: str, options: Iterable[str]) -> str:
    """' Did you mean "x"?' for a near miss, else an empty string."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""


def unknown(kind: str, word: Any, options: Iterable[str]) -> str:
    """The message for a name that is not one of `options`."""
    options = list(options)
    hint = suggest(str(word), options)  # YAML keys may be numbers: `0: x`
    return f"unknown {kind} {show(word)}.{hint} Expected one of: " + ", ".join(options)
