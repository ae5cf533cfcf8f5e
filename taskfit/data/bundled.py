"""The datasets shipped inside the package (taskfit/data/datasets/), listed in its index.yaml."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from taskfit.config.yamlfile import load_data


@dataclass(frozen=True)
class Bundled:
    name: str
    path: Path
    task: str
    label: str
    rows: int
    features: int
    classes: int | None
    about: str
    source: str


@functools.cache
def bundled_datasets() -> dict[str, Bundled]:
    folder = resources.files("taskfit.data").joinpath("datasets")
    index: dict[str, dict[str, Any]] = load_data(folder.joinpath("index.yaml").read_text())
    return {
        name: Bundled(name=name, path=Path(str(folder.joinpath(row.pop("file")))), **row)
        for name, row in index.items()
    }
