"""The spec's dataclasses described for people and editors: the docs' key reference and the JSON
Schema of `taskfit schema`, both read off the same annotations the spec loader checks."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, cast

from taskfit.config.params import show
from taskfit.config.schema import (
    Choice,
    Params,
    as_data,
    is_section,
    param_for,
    type_hints,
    type_name,
)


def reference(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) rows for every key, nested keys dotted: the docs' reference."""
    rows = []
    hints = type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        name = prefix + f.name
        options = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
        inner = [t for t in options if is_section(t)]
        given = f.metadata.get("param")
        ranges = given if isinstance(given, tuple) else (given,) if given else ()
        kind = type_name(tp)
        if ranges:  # each range replaces its own type's name; other kinds of the union stay
            ranged = {p.type for p in ranges}
            others = [t for t in typing.get_args(tp) if t.__name__ not in ranged]
            kind = " or ".join([*(p.expected() for p in ranges), *(type_name(t) for t in others)])
        if f.default is not dataclasses.MISSING:
            default = show(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            made = f.default_factory()
            if hasattr(made, "as_yaml"):
                default = show(made.as_yaml())
            else:
                default = "" if dataclasses.is_dataclass(made) else show(list(made))
        else:
            default = "required"
        rows.append((name, kind, default, f.metadata.get("doc", "")))
        for sub in inner:
            rows.extend(reference(sub, name + "."))
        for option in options:  # lists of sections (`[]`) and mappings to sections (`<name>`)
            origin, args = typing.get_origin(option), typing.get_args(option)
            if origin is tuple and is_section(args[0]):
                rows.extend(reference(args[0], name + "[]."))
            elif origin is dict and is_section(args[1]):
                rows.extend(reference(args[1], name + ".<name>."))
    return rows


def json_schema(cls: type, names: Callable[[str], list[str]]) -> dict[str, Any]:
    """The JSON Schema of a spec section, from the same definitions the Builder reads: types,
    ranges, defaults and docs; `names(kind)` lists the table's names for `names=` keys."""
    hints = type_hints(cast(Any, cls))
    properties: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cast(Any, cls)):
        node = _json_type(hints[f.name], f.metadata.get("param"), f.metadata.get("names"), names)
        node["description"] = f.metadata.get("doc", "")
        if f.default is not dataclasses.MISSING:
            node["default"] = as_data(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            node["default"] = as_data(f.default_factory())
        else:
            required.append(f.name)
        properties[f.name] = node
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _json_type(
    tp: Any, given: Params | None, kind: str | None, names: Callable[[str], list[str]]
) -> dict[str, Any]:
    if isinstance(tp, types.UnionType):
        options = [_json_type(t, given, kind, names) for t in typing.get_args(tp)]
        return {"anyOf": options}
    if tp is type(None):
        return {"type": "null"}
    if typing.get_origin(tp) is tuple:
        return {"type": "array", "items": _json_type(typing.get_args(tp)[0], None, None, names)}
    if typing.get_origin(tp) is dict:
        value = _json_type(typing.get_args(tp)[1], None, None, names)
        return {"type": "object", "additionalProperties": value}
    if tp is Choice or hasattr(tp, "parse"):  # a name from the table, or {name: ..., params}
        listed = names(kind) if kind else []
        named = {"type": "string", "enum": listed} if listed else {"type": "string"}
        mapping = {"type": "object", "properties": {"name": named}, "required": ["name"]}
        forms: list[dict[str, Any]] = [named, mapping]
        if hasattr(tp, "parse"):  # a loss may also be a blend or a schedule of losses
            forms += [
                {"type": "object", "required": [form], "properties": {form: {"type": "array"}}}
                for form in ("blend", "schedule")
            ]
        return {"anyOf": forms}
    if dataclasses.is_dataclass(tp):
        return json_schema(cast(type, tp), names)
    if kind == "activations":
        return {"type": "string", "enum": names(kind)}
    node: dict[str, Any] = {
        "type": {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            tp.__name__, "string"
        )
    }
    param = param_for(given, tp)
    if param is not None and param.type == tp.__name__:
        if param.choices:
            node["enum"] = list(param.choices)
        for bound, key in (
            ("ge", "minimum"),
            ("gt", "exclusiveMinimum"),
            ("le", "maximum"),
            ("lt", "exclusiveMaximum"),
        ):
            if getattr(param, bound) is not None:
                node[key] = getattr(param, bound)
        if param.max_length is not None:
            node["maxLength"] = param.max_length
        if param.pattern is not None:  # JSON Schema's pattern searches; Param's matches whole
            node["pattern"] = "^" + param.pattern[0].removeprefix("(?s)")
    return node
