"""`--set key.path=value` items -> the overrides the library takes, each value read as YAML
(`3` an int, `[a, b]` a list, `null` nothing), so a --set value means what it means in the file.

The YAML and spec modules load on the first --set only: `taskfit --help` imports this module
and would otherwise pay for them (about 0.05 s of its 0.24 s, with `import yaml` at 0.06 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskfit.errors import SpecError


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """The items in order (taskfit.spec.spec.then: `--set a.b=1 --set a={c: 2} --set a.b=3`
    leaves a = {c: 2, b: 3})."""
    from taskfit.config.yamlfile import NOT_YAML, parse_yaml
    from taskfit.spec.spec import then

    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not _text(item):
            raise SpecError(
                f"--set {item.encode('utf-8', 'replace').decode()}: holds bytes that are not "
                "UTF-8 text; write the value in UTF-8"
            )
        if not sep:
            raise SpecError(f"--set {item}: expected key.path=value, e.g. --set training.epochs=3")
        try:  # a spec file's checks: an alias that holds itself, aliases multiplying
            value = parse_yaml(text, f"--set {key.strip()}").data if text.strip() else None
        except SpecError as exc:
            if not exc.problems[0].message.startswith(NOT_YAML):
                raise
            value = text  # not YAML: the text as given
        overrides = then(overrides, {key.strip(): value})
    return overrides


def _text(argument: str) -> bool:
    """Python hands a command-line byte that is not UTF-8 over as a lone surrogate (PEP 383);
    YAML, and every file taskfit writes, take UTF-8 only."""
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
