"""YAML -> plain data plus the line of every key, so each problem can point at its line."""

from __future__ import annotations

import re
import sys
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


# A spec is a page of YAML: far more values than this reached again through aliases (*name) means
# aliases multiplying ("billion laughs"). Values written out once are bounded by the file's size.
MAX_VALUES = 10_000
MERGE = "tag:yaml.org,2002:merge"


@dataclass
class _Walk:
    doc: YamlDoc
    problems: Problems
    seen: set[int] = field(default_factory=set)
    repeated: int = 0  # nodes walked again because an alias reached them


def _walk(node: yaml.Node, path: PathKey, walk: _Walk, above: frozenset[int] = frozenset()) -> None:
    doc = walk.doc
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
    if id(node) in walk.seen:
        walk.repeated += 1
        if walk.repeated > MAX_VALUES:
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
    walk.seen.add(id(node))
    above = above | {id(node)}
    if isinstance(node, yaml.MappingNode):
        pairs = _pairs(node, path, walk)
        if all(_mergeable(value) for key, value in node.value if key.tag == MERGE):
            # PyYAML 6.0.4 lets the last of `<<: [*a, *b]` win (yaml/pyyaml#953); YAML says the
            # first does. The node is flattened here as YAML says, and the constructor sees that.
            node.value = [(key_node, value_node) for key_node, value_node in pairs.values()]
        for key, (key_node, value_node) in pairs.items():
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), walk, above)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), walk, above)


Pair = tuple[yaml.Node, yaml.Node]


def _merged(value: yaml.Node) -> list[yaml.Node]:
    """What a merge key's value merges: one mapping, or each in a list of them."""
    return value.value if isinstance(value, yaml.SequenceNode) else [value]


def _mergeable(value: yaml.Node) -> bool:
    return all(isinstance(source, yaml.MappingNode) for source in _merged(value))


def _pairs(node: yaml.MappingNode, path: PathKey, walk: _Walk) -> dict[Any, Pair]:
    """A mapping's key -> (key node, value node) as YAML means them (yaml.org/type/merge.html):
    its own keys (one given twice is a problem), then those a merge key (`<<: *defaults`, or a
    list of them) brings in that it does not set itself, the first merged mapping winning.
    Anything but a mapping after `<<` is left to the constructor, which says so."""
    own: dict[Any, Pair] = {}
    merged: dict[Any, Pair] = {}
    for key_node, value_node in node.value:
        if key_node.tag == MERGE:
            for source in _merged(value_node):
                if isinstance(source, yaml.MappingNode):
                    for key, pair in _pairs(source, path, walk).items():
                        merged.setdefault(key, pair)
            continue
        if isinstance(key_node, yaml.CollectionNode):  # `? [a, b]`: no data key can be a list
            kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
            walk.problems.add(
                dotted(path) or "YAML",
                f"a key must be a string (or number); got {kind}; write the key as a plain word",
                key_node.start_mark.line + 1,
                walk.doc.source,
            )
            continue
        key = _key(key_node)
        if key in own:
            line = key_node.start_mark.line + 1
            walk.problems.add(
                dotted((*path, key)), "is given twice; keep one", line, walk.doc.source
            )
        own[key] = (key_node, value_node)
    return own | {key: pair for key, pair in merged.items() if key not in own}


def _key(node: yaml.Node) -> Any:
    """A mapping key as the data holds it: `~` is None, `1` is 1, so lines match the data's keys."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


NOT_YAML = "is not valid YAML"  # what a syntax error's message starts with


def parse_yaml(text: str, source: str) -> YamlDoc:
    """Parse one YAML document; a syntax error becomes a SpecError with its line."""
    loader = SafeLoader(text)
    problems = Problems()
    doc = YamlDoc(None, source)
    try:
        node = loader.get_single_node()
        if node is not None:
            # before the constructor, which folds merge keys into the node in place
            _walk(node, (), _Walk(doc, problems))
            problems.raise_if_any()  # a key the constructor cannot hash is said once, here
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        detail = _long_key(text, line) or (
            f"{exc.problem}" + (f" ({exc.context})" if exc.context else "")
        )
        raise SpecError([Problem("YAML", f"{NOT_YAML}: {detail}", line, source)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids; libyaml counts bytes
        line = text.encode("utf-8", "replace")[: exc.position].count(b"\n") + 1
        char = exc.character
        shown = f"#x{char:02x}" if isinstance(char, int) else repr(char)
        detail = f"{exc.reason} ({shown}); remove that character"
        raise SpecError([Problem("YAML", f"{NOT_YAML}: {detail}", line, source)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem("YAML", f"{NOT_YAML}: {exc}", None, source)]) from None
    except ValueError as exc:  # a value the constructor could not make into its Python type
        if "integer string conversion" in str(exc):  # over sys.get_int_max_str_digits()
            limit = sys.get_int_max_str_digits()
            detail = f"holds an integer of more than {limit} digits; no setting takes one so large"
        else:  # a date that does not exist (2024-02-30), which YAML reads as a date
            detail = f"{NOT_YAML}: a value could not be read ({exc}); quote it to keep it text"
        raise SpecError([Problem("YAML", detail, None, source)]) from exc
    finally:
        loader.dispose()
    problems.raise_if_any()
    return doc


# YAML 1.2, 7.4.2: a key written without `?` (an implicit key) is at most 1024 characters.
IMPLICIT_KEY_CHARS = 1024
_KEY_ON_LINE = re.compile(r"^\s*(?:-\s+)*(?P<key>[^\s#][^\n]*?):(?:\s|$)")


def _long_key(text: str, line: int | None) -> str | None:
    """PyYAML's error for a key over YAML's length limit ("could not find expected ':'"), said as
    the limit it is."""
    lines = text.splitlines()
    if line is None or not 0 < line <= len(lines):
        return None
    found = _KEY_ON_LINE.match(lines[line - 1])
    if found is None or len(found["key"]) <= IMPLICIT_KEY_CHARS:
        return None
    key = found["key"]
    return (
        f"the key {key[:40]!r}... is {len(key)} characters long; YAML allows at most"
        f" {IMPLICIT_KEY_CHARS} for a key on one line: shorten it"
    )


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
