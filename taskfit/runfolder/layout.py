"""What a run folder holds, by name (the one place each name is written), and which format of
it this taskfit writes and reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from taskfit.errors import TaskfitError

# 2: status.json records the format. Folders written before it carry no format and read as 1;
# both have the same files, so this taskfit opens either.
FORMAT = 2
READS = (1, 2)


@dataclass(frozen=True)
class RunFolder:
    """A run folder's files. `taskfit train` writes them; every other command reads them."""

    path: Path

    @property
    def spec(self) -> Path:
        """The spec with every default and table choice filled in (written first)."""
        return self.path / "spec.resolved.yaml"

    @property
    def status(self) -> Path:
        """running, completed, interrupted or failed, the reason, and the folder's format."""
        return self.path / "status.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def facts(self) -> Path:
        """How long, on how many rows, with which versions."""
        return self.path / "run.json"

    @property
    def baseline(self) -> Path:
        return self.path / "baseline_single.json"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def backup(self) -> Path:
        """What `--resume` carries on from; removed when the run completes."""
        return self.path / "backup"

    def format(self) -> int:
        """The format status.json records; 1 for a folder written before formats were."""
        try:
            doc = json.loads(self.status.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 1
        found = doc.get("format", 1) if isinstance(doc, dict) else 1
        return found if isinstance(found, int) else 1

    def check_format(self) -> None:
        """A folder from a newer taskfit is refused by name, not misread."""
        found = self.format()
        if found not in READS:
            raise TaskfitError(
                f"{self.path}: run folder format {found}, written by a newer taskfit; this "
                f"taskfit reads formats {', '.join(map(str, READS))}. Upgrade taskfit to read it"
            )
