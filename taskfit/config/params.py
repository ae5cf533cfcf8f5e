"""Typed parameters with ranges: one checker for spec keys and for the table's Keras parameters.

Messages follow scikit-learn's form: what was expected, then "Got ... instead."
"""

from __future__ import annotations

import difflib
import math
import re
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
        # an int of 400 digits is finite, though math.isfinite cannot convert it to say so
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("list["):
        inner = kind[5:-1]
        return isinstance(value, list) and all(_is_type(v, inner) for v in value)
    raise ValueError(f"unknown parameter type {kind!r}")


# The largest number Keras can take, for a key that sets no upper bound of its own: integers go
# to NumPy and TensorFlow as int64 (batch_size 1e20 was an OverflowError traceback from Keras;
# 2**63 - 1 trains), and weights, rates and loss weights are float32 (learning_rate 1e39 was an
# infinite step).
LIMITS: dict[str, tuple[float, str]] = {
    "int": (2**63 - 1, "the largest int64, which NumPy and TensorFlow hold"),
    "float": (3.4028234663852886e38, "the largest float32, which Keras computes in"),
}

YAML_TYPES = (str, int, float, bool, list, dict, type(None))  # what a YAML spec can hold
INT_BITS = 10_000  # larger ints are shown by size (Python's str() stops near 14,000)
SHOWN = 100  # characters of a value a message quotes; a whole pasted document helps no one


def show(value: Any) -> str:
    """A value as the user wrote it in YAML."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int) and value.bit_length() > INT_BITS:  # str() would refuse it
        text = f"an integer of about {int(value.bit_length() * math.log10(2))} digits"
    else:
        try:
            text = str(value)
        except ValueError:  # a list or dict holding such an integer
            text = f"a {type(value).__name__} holding an integer too long to print"
    text = text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
    if type(value) not in YAML_TYPES:  # given from Python: 2.5 may be a numpy.float64
        kind = type(value)
        module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
        text += f" (a {module}{kind.__qualname__})"
    return text


@dataclass(frozen=True)
class Param:
    """A typed value with optional bounds; `check` returns the problem, or None."""

    type: str
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    max_length: int | None = None  # a string's characters at most
    pattern: tuple[str, str] | None = None  # a regex a string must match, and it said in words
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
        if self.type == "str":
            at_most = f" of at most {self.max_length} characters" if self.max_length else ""
            return text + at_most + (f", {self.pattern[1]}" if self.pattern else "")
        signs = ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
        bounds = [f"{sign} {self._shown(bound)}" for sign, bound in signs if bound is not None]
        return text + (" " + " and ".join(bounds) if bounds else "")

    def _shown(self, bound: float) -> str:
        return str(int(bound)) if self.type == "int" else f"{bound:g}"

    def _in_range(self, value: Any) -> bool:
        if self.type == "str":
            return (self.max_length is None or len(value) <= self.max_length) and (
                self.pattern is None or re.fullmatch(self.pattern[0], value) is not None
            )
        if self.type not in ("int", "float"):
            return True
        return (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.lt is None or value < self.lt)
            and (self.le is None or value <= self.le)
        )

    def _beyond_limit(self, value: float) -> str | None:
        """Why Keras cannot hold `value`, or None; a key with an upper bound has chosen its own."""
        if self.type not in LIMITS or self.lt is not None or self.le is not None:
            return None
        limit, why = LIMITS[self.type]
        if abs(value) <= limit:
            return None
        return (
            f"must be {self.expected()}, and at most {self._shown(limit)} in size ({why}). "
            f"Got {show(value)} instead."
        )

    def check(self, value: Any) -> str | None:
        if value is None and not self.required and self.default is None:
            return None
        ok = _is_type(value, self.type)
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self._in_range(value):
            return self._beyond_limit(value)
        expected = self.expected()
        if isinstance(value, float) and not math.isfinite(value):
            expected = expected.replace("a number", "a finite number", 1)
        got = show(value)
        if isinstance(value, str) and self.max_length and len(value) > self.max_length:
            got = f"{len(value)} characters, {got}"  # the quote alone is cut short
        return f"must be {expected}. Got {got} instead."


def suggest(word: str, options: Iterable[str]) -> str:
    """' Did you mean "x"?' for a near miss, else an empty string."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""


def unknown(kind: str, word: Any, options: Iterable[str]) -> str:
    """The message for a name that is not one of `options`."""
    options = list(options)
    hint = suggest(str(word), options)  # YAML keys may be numbers: `0: x`
    return f"unknown {kind} {show(word)}.{hint} Expected one of: " + ", ".join(options)
