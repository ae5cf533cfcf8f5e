"""The task spec: YAML -> a frozen, validated `Spec`. Every problem at once, with path and line.

`load_spec` checks everything that can be checked without the data: structure, types, ranges, and
every loss, optimizer, schedule, metric and activation name against the recommendation table.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit.config.params import show
from taskfit.config.schema import Builder
from taskfit.config.yamlfile import PathKey, YamlDoc, parse_yaml, read_yaml
from taskfit.errors import SpecError
from taskfit.recipe.table import load_table
from taskfit.spec.keys import Spec
from taskfit.spec.rules import check_name, check_task_or_heads, check_together


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec and where it came from (relative data paths resolve against `base_dir`)."""

    spec: Spec
    base_dir: Path
    source: str
    raw: dict[str, Any]  # the user's keys, after --set, for spec.resolved.yaml


# Dotted spec keys -> values: {"training.epochs": 5}. The CLI reads its --set items into this
# (taskfit.cli.overrides); the library never parses strings.
Overrides = Mapping[str, Any]


def then(first: Overrides, later: Overrides) -> dict[str, Any]:
    """`later` applied after `first`, as --set items are, one by one: a key set again moves to the
    end, so it applies after the keys given in between."""
    combined = dict(first)
    for dotted, value in later.items():
        combined.pop(dotted, None)
        combined[dotted] = value
    return combined


# A spec file, or a spec's keys as data ({"task": "binary", "data": {...}}).
SpecSource = str | Path | Mapping[str, Any]


def load_spec(source: SpecSource, overrides: Overrides | None = None) -> LoadedSpec:
    """A spec file (its relative paths relative to its folder), or a spec given as data (its
    relative paths relative to the working directory; problems name no line)."""
    if isinstance(source, Mapping):
        return _load(YamlDoc(dict(source), "<spec>"), Path.cwd(), overrides or {})  # _load copies
    path = Path(source)
    return _load(read_yaml(path), path.resolve().parent, overrides or {})


def spec_stem(source: SpecSource) -> str:
    """What names a run whose spec has no `name`: the file's stem, or "spec" for data."""
    return "spec" if isinstance(source, Mapping) else Path(source).stem


def parse_spec(text: str, base_dir: Path, overrides: Overrides | None = None) -> LoadedSpec:
    return _load(parse_yaml(text, "<spec>"), base_dir, overrides or {})


def _load(doc: YamlDoc, base_dir: Path, overrides: Overrides) -> LoadedSpec:
    if doc.data is None:
        raise SpecError(f"{doc.source}: is empty; a spec needs at least `task` and `data`")
    data = copy.deepcopy(doc.data)
    overridden = frozenset(apply_override(data, k, value) for k, value in overrides.items())
    builder = Builder(doc, overridden, lookup=check_name)
    check_task_or_heads(data, builder)
    spec = builder.build(Spec, data)
    if spec is not None:
        check_together(spec, builder)
    builder.problems.raise_if_any()
    assert spec is not None
    return LoadedSpec(spec, base_dir, doc.source, data)


def _as_set(value: Any) -> str:
    """An override's value as --set would write it (an integer beyond the digits Python
    converts, or one that holds itself, as the message quotes it)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except ValueError:
        return show(value)


def apply_override(data: Any, dotted: str, value: Any) -> PathKey:
    """("training.epochs", 3) -> data["training"]["epochs"] = 3."""
    parts = dotted.strip().split(".")
    item = f"{dotted}={_as_set(value)}"  # as a --set item says it
    if not all(parts):
        raise SpecError(f"--set {item}: expected key.path=value, e.g. --set training.epochs=3")
    if not isinstance(data, dict):
        raise SpecError("--set: the spec must be a mapping of keys")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(f"--set {item}: `{part}` is {show(child)}, not a mapping of keys")
        node = child
    node[parts[-1]] = copy.deepcopy(value)
    return tuple(parts)


def spec_schema() -> dict[str, Any]:
    """The spec's JSON Schema (`taskfit schema`), generated from the dataclasses above and the
    table's names, so editors complete and check the keys the validator accepts."""
    from taskfit.config.describe import json_schema

    table = load_table()
    # auto: the table's loss for the labels, the output layer's activation from the table
    with_auto = {"losses": [*table.all_losses()], "activations": [*table.activations]}

    def names(kind: str) -> list[str]:
        return ["auto", *with_auto[kind]] if kind in with_auto else list(table.catalog(kind))

    schema = json_schema(Spec, names)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "taskfit task spec",
        **schema,
    }
