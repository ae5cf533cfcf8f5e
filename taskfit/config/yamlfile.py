"""YAML -> plain data plus the line of every key, so each problem can point at its line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taskfit.config.params import show
from taskfit.config.readable import SPEC_BYTES, check_regular
from taskfit.errors import Problem, Problems, SpecError

PathKey = tuple[str | int, ...]


# libyaml's C loader parses ten times faster than the pure-Python one; PyYAML wheels ship it.
class SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml.safe_load's loader, reading 1e-4 as the number YAML 1.2 and Python read (YAML 1.1,
    which PyYAML follows, wants 1.0e-4 and makes 1e-4 a string: learning_rate: 1e-4 failed)."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_data(text: str) -> Any:
    """Plain `yaml.safe_load`, with the fast loader."""
    return yaml.load(text, Loader=SafeLoader)


def dotted(path: PathKey) -> str:
    """('model', 'layers', 1, 'units') -> 'model.layers[1].units'."""
    out = ""
    for part in path:  # a YAML key may also be null, true or a number: `~: x` shows as null
        index = isinstance(part, int) and not isinstance(part, bool)
        name = part if isinstance(part, str) else show(part)
        out += f"[{part}]" if index else (f".{name}" if out else name)
    return out


@dataclass
class YamlDoc:
    data: Any
    source: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int | None:
        """The line of `path`, or of its nearest parent that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


# A spec is a page of YAML; far more values than this means aliases multiplying ("billion laughs").
MAX_VALUES = 10_000


def _walk(
    node: yaml.Node,
    path: PathKey,
    doc: YamlDoc,
    problems: Problems,
    above: frozenset[int] = frozenset(),
) -> None:
    # An alias may point at a node that holds it (`a: &x [*x]`): the data would be endless.
    if id(node) in above:
        raise SpecError(
            [
                Problem(
                    dotted(path),
                    "holds itself through a YAML alias (*name inside its own &name); "
                    "write the value out instead",
                    doc.line(path),
                    doc.source,
                )
            ]
        )
    if len(doc.lines) > MAX_VALUES:
        raise SpecError(
            [
                Problem(
                    "YAML",
                    f"expands to more than {MAX_VALUES} values through aliases (*name); "
                    "write the spec out without repeating aliases",
                    None,
                    doc.source,
                )
            ]
        )
    above = above | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = _key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.add(dotted((*path, key)), "is given twice; keep one", line, doc.source)
            seen.add(key)
            doc.lines[(*path, key)] = line
            _walk(value_node, (*path, key), doc, problems, above)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), doc, problems, above)


def _key(node: yaml.Node) -> Any:
    """A mapping key as the data holds it: `~` is None, `1` is 1, so lines match the data's keys."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def parse_yaml(text: str, source: str) -> YamlDoc:
    """Parse one YAML document; a syntax error becomes a SpecError with its line."""
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        detail = f"{exc.problem}" + (f" ({exc.context})" if exc.context else "")
        line = mark.line + 1 if mark else None
        raise SpecError([Problem("YAML", f"is not valid YAML: {detail}", line, source)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids; libyaml counts bytes
        line = text.encode("utf-8", "replace")[: exc.position].count(b"\n") + 1
        char = exc.character
        shown = f"#x{char:02x}" if isinstance(char, int) else repr(char)
        detail = f"{exc.reason} ({shown}); remove that character"
        raise SpecError([Problem("YAML", f"is not valid YAML: {detail}", line, source)]) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    doc = YamlDoc(data, source)
    if node is not None:
        problems = Problems()
        _walk(node, (), doc, problems)
        problems.raise_if_any()
    return doc


def read_yaml(path: Path) -> YamlDoc:
    """Read a spec file; a missing, unreadable or non-UTF-8 file is a SpecError."""
    try:
        if path.is_dir():  # inside the try: a name too long fails already here
            raise SpecError(f"{path}: is a directory; give the path of a YAML spec file")
        check_regular(path, str(path), SpecError, SPEC_BYTES, "a spec")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file; check the path") from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: is not UTF-8 text (byte {exc.start}); save the spec as UTF-8"
        ) from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_yaml(text, str(path))
