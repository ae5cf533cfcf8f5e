"""Plain YAML data -> frozen dataclasses, collecting every problem with its path and line.

The spec's dataclasses are the one definition: their annotations give the types, a `Param` in a
field's metadata gives the range, and the same definitions drive the docs' spec reference.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from taskfit.config.params import Param, show, suggest
from taskfit.config.yamlfile import PathKey, YamlDoc, dotted
from taskfit.errors import Problems

T = TypeVar("T")


Params = Param | tuple[Param, ...]  # a key's range; of a union (a number or a name), one per type


def key(
    default: Any = dataclasses.MISSING, *, doc: str, param: Params | None = None, names: str = ""
) -> Any:
    """A spec key: its default, one line of documentation, optionally its range (for a key
    of several types, one Param per type: `float | str`), and the table list its value must
    come from (`names="activations"`), checked by the Builder's `lookup`."""
    metadata = {"doc": doc, "param": param, "names": names}
    if isinstance(default, tuple | list | dict) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Choice:
    """A named thing with parameters: `adam`, or `{name: sgd, momentum: 0.9}`."""

    name: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_yaml(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.params} if self.params else self.name


@dataclass
class Builder:
    """Walks raw YAML data along the dataclass definitions; problems go to `problems`."""

    doc: YamlDoc
    overridden: frozenset[PathKey] = frozenset()
    lookup: Callable[[str, Any, PathKey, Builder], None] | None = None
    problems: Problems = dataclasses.field(default_factory=Problems)

    def add(self, path: PathKey, message: str) -> None:
        where = dotted(path)
        if any(path[: len(o)] == o or o[: len(path)] == path for o in self.overridden):
            self.problems.add(f"--set {where}", message)
        else:
            self.problems.add(where, message, self.doc.line(path), self.doc.source)

    def build(self, cls: type[T], raw: Any, path: PathKey = ()) -> T | None:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if not isinstance(raw, Mapping):
            self.add(
                path, f"must be a mapping with keys {', '.join(fields)}. Got {show(raw)} instead."
            )
            return None
        before = len(self.problems.items)
        for name in raw:
            if name not in fields:
                hint = suggest(str(name), fields)
                self.add((*path, name), f"unknown key.{hint} Valid keys here: {', '.join(fields)}")
        hints = type_hints(cast(Any, cls))
        values = {}
        for name, f in fields.items():
            if name in raw:
                value = self.convert(hints[name], f.metadata.get("param"), raw[name], (*path, name))
                if f.metadata.get("names") and self.lookup and value is not None:
                    self.lookup(f.metadata["names"], value, (*path, name), self)
                values[name] = value
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.add((*path, name), "is required" + doc_hint(f))
        if len(self.problems.items) > before:
            return None
        return cls(**values)

    def convert(self, tp: Any, param: Params | None, value: Any, path: PathKey) -> Any:
        options = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
        if value is None and type(None) in options:
            return None
        options = tuple(o for o in options if o is not type(None))
        if len(options) > 1:  # `str | tuple[str, ...]`, `str | int | bool`: the kind that fits
            fitting = next((o for o in options if _fits(o, value)), None)
            if fitting is None:
                kinds = " or ".join(type_name(o) for o in options)
                self.add(path, f"must be {kinds}. Got {show(value)} instead.")
                return None
            return self.convert(fitting, param, value, path)
        tp = options[0]
        if typing.get_origin(tp) is dict:
            if not isinstance(value, Mapping):
                self.add(path, f"must be a mapping. Got {show(value)} instead.")
                return None
            item_type = typing.get_args(tp)[1]
            return {k: self.convert(item_type, None, v, (*path, k)) for k, v in value.items()}
        if typing.get_origin(tp) is tuple:
            item_type = typing.get_args(tp)[0]
            if not isinstance(value, list):
                self.add(path, f"must be a list. Got {show(value)} instead.")
                return None
            return tuple(self.convert(item_type, param, v, (*path, i)) for i, v in enumerate(value))
        if tp is Choice:
            return self.choice(value, path)
        if hasattr(tp, "parse"):  # a type that reads its own YAML forms (LossSpec)
            return tp.parse(self, value, path)
        if dataclasses.is_dataclass(tp):
            return self.build(tp, value, path)  # type: ignore[arg-type]
        check = param_for(param, tp) or Param(tp.__name__)
        # Param.check lets null through (a Keras parameter may default to null); a spec key whose
        # type has no null must have a value.
        problem = (
            check.check(value)
            if value is not None
            else f"must be {check.expected()}. Got null instead."
        )
        if problem:
            self.add(path, problem)
            return None
        return float(value) if tp is float else value

    def choice(self, value: Any, path: PathKey) -> Choice | None:
        if isinstance(value, str):
            return Choice(value)
        if isinstance(value, Mapping) and isinstance(value.get("name"), str):
            return Choice(value["name"], {k: v for k, v in value.items() if k != "name"})
        self.add(path, f"must be a name or a mapping with a `name` key. Got {show(value)} instead.")
        return None


def param_for(param: Params | None, tp: Any) -> Param | None:
    """The range a value of type `tp` is checked against: the key's Param, or of its several
    the one of `tp`'s type."""
    if not isinstance(param, tuple):
        return param
    return next((p for p in param if p.type == getattr(tp, "__name__", None)), None)


def as_data(value: Any) -> Any:
    """A spec (or any part of it) back to plain YAML data."""
    if hasattr(value, "as_yaml"):  # Choice, LossSpec: back to the form the user wrote
        return value.as_yaml()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: as_data(v) for k, v in value.items()}
    return value


@functools.cache
def type_hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def doc_hint(f: dataclasses.Field[Any]) -> str:
    doc = f.metadata.get("doc")
    return f" ({doc})" if doc else ""


def _fits(tp: Any, value: Any) -> bool:
    """Whether `value` is of the kind `tp` names (its range is checked later)."""
    if typing.get_origin(tp) is tuple:
        return isinstance(value, list)
    if typing.get_origin(tp) is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, Mapping)
    if tp is bool or isinstance(value, bool):
        return tp is bool and isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float)
    return isinstance(value, tp)


def is_section(tp: Any) -> bool:
    """A nested mapping of spec keys (a Choice's parameters come from the table instead)."""
    return dataclasses.is_dataclass(tp) and tp is not Choice and not hasattr(tp, "parse")


def type_name(tp: Any) -> str:
    if tp is Choice:
        return "a name or {name: ..., params}"
    if hasattr(tp, "parse"):
        return str(tp.type_name)
    if isinstance(tp, types.UnionType):
        return " or ".join(type_name(t) for t in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        if is_section(item):
            return "a list of mappings"
        kinds = typing.get_args(item) if isinstance(item, types.UnionType) else (item,)
        return "a list of " + " or ".join(type_name(k).split(" ", 1)[1] + "s" for k in kinds)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if typing.get_origin(tp) is dict:
        return f"a mapping to {type_name(typing.get_args(tp)[1]).split(' ', 1)[1]}s"
    return {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "NoneType": "null",
    }.get(getattr(tp, "__name__", str(tp)), str(tp))
