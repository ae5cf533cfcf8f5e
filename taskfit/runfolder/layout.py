"""What a run folder holds, by name (the one place each name is written), and which format of
it this taskfit writes and reads (runfolder.files reads the format back)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# 2: status.json records the format. Folders written before it carry no format and read as 1.
# 3: plan.json holds the resolved plan, and run.json each regression head's target scale.
# Folders of format 1 and 2 have neither: their plan is derived again from spec.resolved.yaml
# (by the table of the taskfit reading them), so this taskfit opens all three.
# 4: the trained model's layout: the members of an ensemble share each layer along a member
# axis, and categories reach the fitted part as ids. model.keras of any format still loads
# (Keras's own layers); a checkpoint of format 1-3 does not fit this model, so it is not resumed.
# 5: a checkpoint holds the training model's and optimizer's variables as one .npz, not
# Keras's .weights.h5 (which took ten times as long to write each epoch).
# 6: the category columns of few values reach the fitted part as one matrix of one-hot vectors
# (model.build.one_hot_columns), which moves their inputs in the first layer's weights, so a
# checkpoint of format 5 is not resumed.
# 7: plan.json names the numeric embedding and clipping with their parameters
# (model.numeric_embedding, model.numeric_clipping), where format 3-6 gave a flag for each of
# the periodic embedding and smooth clipping (runfolder.planfile reads both).
FORMAT = 7
READS = (1, 2, 3, 4, 5, 6, 7)
RESUMES_FROM = 6  # the first format whose checkpoint this taskfit's model can load
CHECKPOINT = "training_metadata.json"  # Keras's name; here it also names the state file
STATE_SUFFIX = ".npz"  # a checkpoint's state file: epoch-NNNN.npz
TEXT_COLUMN = "active_loss"  # history.csv's one kind of text column: a head's loss in force
STATUSES = ("running", "completed", "interrupted", "failed")  # what status.json says


@dataclass(frozen=True)
class RunFolder:
    """A run folder's files. `taskfit train` writes them; every other command reads them."""

    path: Path

    @property
    def spec(self) -> Path:
        """The spec with every default and table choice filled in (written first)."""
        return self.path / "spec.resolved.yaml"

    @property
    def plan(self) -> Path:
        """Every choice the table made for this run, as data: what predict, evaluate, export
        and resume use, whatever the table of a later taskfit says."""
        return self.path / "plan.json"

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
    def explained(self) -> Path:
        """`taskfit explain`'s permutation importance, for report.html."""
        return self.path / "explain.json"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def backup(self) -> Path:
        """What `--resume` carries on from; removed when the run completes."""
        return self.path / "backup"

    @property
    def checkpoint(self) -> Path:
        """Keras's BackupAndRestore metadata (its own name), written last for each finished
        epoch: the one file that says there is an epoch to carry on from."""
        return self.backup / CHECKPOINT

    @property
    def best_weights(self) -> Path:
        """Early stopping's best weights so far, kept for --resume."""
        return self.backup / "best.weights.npz"

    @property
    def workers(self) -> Path:
        """train --workers: process 0's weights and history for this process, while it runs."""
        return self.path / ".workers"

    @property
    def tensorboard(self) -> Path:
        """training.tensorboard: true writes TensorBoard's logs here."""
        return self.path / "tensorboard"

    @property
    def exports(self) -> Path:
        """Where `taskfit export` writes unless --output says otherwise."""
        return self.path / "export"


@dataclass(frozen=True)
class TuneFolder:
    """A `taskfit tune` folder's files: its trials, not a run (`report` and `predict` say so)."""

    path: Path

    @property
    def best(self) -> Path:
        """The best trial's resolved spec: `taskfit train` takes it."""
        return self.path / "best.yaml"

    @property
    def trials(self) -> Path:
        return self.path / "trials.csv"

    @property
    def record(self) -> Path:
        """Every trial's settings and score, as data (tune --json prints the same)."""
        return self.path / "tune.json"
