"""YAML -> plain data plus the line of every key, so each problem can point at its line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taskfit.errors import Problem, Problems, SpecError

PathKey = tuple[str | int, ...]

# libyaml's C loader parses ten times faster than the pure-Python one; PyYAML wheels ship it.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_data(text: str) -> Any:
    """Plain `yaml.safe_load`, with the fast loader."""
    return yaml.load(text, Loader=SafeLoader)


def dotted(path: PathKey) -> str:
    """('model', 'layers', 1, 'units') -> 'model.layers[1].units'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
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


def _walk(node: yaml.Node, path: PathKey, doc: YamlDoc, problems: Problems) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.add(dotted((*path, key)), "is given twice; keep one", line, doc.source)
            seen.add(key)
            doc.lines[(*path, key)] = line
            _walk(value_node, (*path, key), doc, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), doc, problems)


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
    if path.is_dir():
        raise SpecError(f"{path}: is a directory; give the path of a YAML spec file")
    try:
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
