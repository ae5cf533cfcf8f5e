"""taskfit against the hand-written Keras it replaces: training wall time, fit throughput, startup.

For each bundled dataset, `taskfit train` and bench/handwritten.py fit the same model on the same
split with the same epochs, batch size and seed (early stopping off), each in its own Python
process, alternating which goes first; the median of the repeats is reported. Targets:

- fit throughput (train rows x epochs / fit seconds): taskfit >= 0.95x hand-written;
- whole `taskfit train` wall <= `python -c "import tensorflow"` + 1.1x the hand-written wall;
- `taskfit --help`, `recommend` and `check`: <= 0.3 s and <= 3x `python -c "import yaml"`.

    .venv/bin/python bench/bench_speed.py [--datasets digits] [--repeats 2] [--epochs 20]

Prints markdown tables and writes bench/results/speed.json.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from handwritten import load, split_rows

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DATA = ROOT / "taskfit" / "data" / "datasets"
DATASETS = {  # bundled dataset -> (label column, task)
    "breast_cancer": ("diagnosis", "binary"),
    "digits": ("digit", "multiclass"),
    "diabetes": ("progression", "regression"),
}
THROUGHPUT_TARGET = 0.95  # taskfit / hand-written fit samples per second, at least
WALL_FACTOR = 1.1  # taskfit wall <= TF import + this x hand-written wall
STARTUP_SECONDS = 0.3  # --help, recommend, check: at most
STARTUP_FACTOR = 3.0  # ... and at most this x `import yaml`


@dataclass(frozen=True)
class Sample:
    """One training run, timed from outside its process."""

    wall: float
    fit_seconds: float
    train_rows: int
    epochs: int

    @property
    def throughput(self) -> float:
        return self.train_rows * self.epochs / self.fit_seconds


def child_env() -> dict[str, str]:
    """Bytecode caching on, as on a user's machine (this workplace sets PYTHONDONTWRITEBYTECODE,
    which would recompile taskfit's own modules on every start): the warm-up run writes it."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def taskfit_exe() -> str:
    return str(Path(sys.executable).with_name("taskfit"))


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{tail}")
    return wall, done


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


def write_spec(folder: Path, dataset: str, epochs: int, batch_size: int, seed: int) -> Path:
    label, task = DATASETS[dataset]
    spec = folder / f"bench_{dataset}.yaml"
    metric = "mae" if task == "regression" else "accuracy"  # plain Keras's usual metric, as by hand
    spec.write_text(
        f"task: {task}\n"
        f"data: {{source: {dataset}, label: {label}}}\n"
        f"metrics: [{metric}]\n"
        # the hand-written network: one body, no periodic embedding, no refit (the small-table
        # additions would make it another model; bench_quality measures them)
        "model: {members: 1, numeric_embedding: none}\n"
        f"training: {{epochs: {epochs}, batch_size: {batch_size}, seed: {seed}, "
        "early_stopping: null, refit: false}\n"
    )
    return spec


def run_taskfit(spec: Path, output: Path, train_rows: int) -> Sample:
    wall, done = timed([taskfit_exe(), "train", str(spec), "--json", "--output", str(output)])
    doc = json_output(done.stdout)
    if doc["train_rows"] != train_rows:
        raise SystemExit(f"taskfit trained on {doc['train_rows']} rows, by hand {train_rows}")
    return Sample(wall, float(doc["fit_seconds"]), train_rows, int(doc["epochs"]))


def run_handwritten(dataset: str, output: Path, epochs: int, batch_size: int, seed: int) -> Sample:
    label, task = DATASETS[dataset]
    command = [sys.executable, str(BENCH / "handwritten.py"), dataset, label, task]
    command += ["--output", str(output), "--epochs", str(epochs)]
    command += ["--batch-size", str(batch_size), "--seed", str(seed)]
    wall, done = timed(command)
    doc = json_output(done.stdout)
    return Sample(wall, doc["fit_seconds"], doc["train_rows"], doc["epochs"])


def check_same_split(spec: Path, dataset: str, seed: int) -> int:
    """taskfit's own split (no TensorFlow) against handwritten.py's, row for row, on the columns
    taskfit uses (it leaves constant columns out); returns the number of training rows."""
    from taskfit.feed.splits import open_splits
    from taskfit.plan.checking import check_spec

    checked = check_spec(spec, {"training.seed": seed})
    ours = open_splits(checked.data, checked.plan, checked.loaded.spec)
    label, task = DATASETS[dataset]
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
    return len(rows[0])


def compare(dataset: str, repeats: int, epochs: int, batch_size: int, seed: int) -> dict[str, Any]:
    taskfit_runs: list[Sample] = []
    hand_runs: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="taskfit-bench-") as tmp:
        folder = Path(tmp)
        spec = write_spec(folder, dataset, epochs, batch_size, seed)
        train_rows = check_same_split(spec, dataset, seed)
        for i in range(repeats):
            order = ("taskfit", "hand") if i % 2 == 0 else ("hand", "taskfit")
            for side in order:
                if side == "taskfit":
                    taskfit_runs.append(run_taskfit(spec, folder / "runs", train_rows))
                else:
                    output = folder / f"hand{i}"
                    output.mkdir()
                    hand_runs.append(run_handwritten(dataset, output, epochs, batch_size, seed))
    return summarize(dataset, taskfit_runs, hand_runs)


def summarize(dataset: str, taskfit_runs: list[Sample], hand_runs: list[Sample]) -> dict[str, Any]:
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


def median_wall(command: list[str], runs: int, warmup: int = 0) -> float:
    for _ in range(warmup):
        timed(command)
    return statistics.median(timed(command)[0] for _ in range(runs))


def startup(runs: int) -> dict[str, float]:
    """Median wall per command, `import yaml` first as the baseline."""
    with tempfile.TemporaryDirectory(prefix="taskfit-bench-") as tmp:
        spec = ROOT / "configs" / "binary.yaml"
        shown = "configs/binary.yaml"
        if not spec.exists():
            spec, shown = Path(tmp) / "binary.yaml", "<temp binary spec>"
            spec.write_text("task: binary\ndata: {source: breast_cancer, label: diagnosis}\n")
        exe = taskfit_exe()
        commands = {
            'python -c "import yaml"': [sys.executable, "-c", "import yaml"],
            "taskfit --help": [exe, "--help"],
            "taskfit recommend --task regression": [exe, "recommend", "--task", "regression"],
            f"taskfit check {shown}": [exe, "check", str(spec)],
        }
        return {name: median_wall(command, runs, warmup=1) for name, command in commands.items()}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def training_table(results: list[dict[str, Any]], tf_import: float) -> str:
    headers = [
        "dataset",
        "taskfit wall s",
        "hand wall s",
        "wall ratio",
        "TF import s",
        f"wall target (<= TF + {WALL_FACTOR}x hand)",
        "taskfit fit samples/s",
        "hand samples/s",
        "throughput ratio",
        f"target (>= {THROUGHPUT_TARGET}x)",
    ]
    rows = []
    for r in results:
        limit = tf_import + WALL_FACTOR * r["hand_wall"]
        ratio = r["taskfit_throughput"] / r["hand_throughput"]
        rows.append(
            [
                r["dataset"],
                f"{r['taskfit_wall']:.2f}",
                f"{r['hand_wall']:.2f}",
                f"{r['taskfit_wall'] / r['hand_wall']:.2f}",
                f"{tf_import:.2f}",
                f"{verdict(r['taskfit_wall'] <= limit)} ({r['taskfit_wall']:.2f} vs {limit:.2f})",
                f"{r['taskfit_throughput']:.0f}",
                f"{r['hand_throughput']:.0f}",
                f"{ratio:.2f}",
                verdict(ratio >= THROUGHPUT_TARGET),
            ]
        )
    return markdown(headers, rows)


def startup_table(times: dict[str, float]) -> str:
    baseline_name = next(iter(times))
    baseline = times[baseline_name]
    rows = [[baseline_name, f"{baseline:.3f}", "1.00", ""]]
    for name, seconds in list(times.items())[1:]:
        ratio = seconds / baseline
        ok = seconds <= STARTUP_SECONDS and ratio <= STARTUP_FACTOR
        rows.append([f"`{name}`", f"{seconds:.3f}", f"{ratio:.2f}", verdict(ok)])
    headers = [
        "command",
        "median s",
        "vs import yaml",
        f"target (<= {STARTUP_SECONDS} s and <= {STARTUP_FACTOR:g}x)",
    ]
    return markdown(headers, rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="*",
        choices=list(DATASETS),
        default=list(DATASETS),
        help="datasets to train on; none: only the startup timings",
    )
    parser.add_argument("--repeats", type=int, default=2, help="training runs per side (median)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-runs", type=int, default=7, help="timed runs per command")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not Path(taskfit_exe()).exists():
        raise SystemExit(f"no taskfit console script next to {sys.executable}")
    started = time.perf_counter()
    tf_import = median_wall([sys.executable, "-c", "import tensorflow"], runs=3)
    print(f"python -c 'import tensorflow': {tf_import:.2f} s (median of 3)", file=sys.stderr)
    results = []
    for dataset in args.datasets:
        print(f"{dataset}: {args.repeats} x 2 runs of {args.epochs} epochs ...", file=sys.stderr)
        results.append(compare(dataset, args.repeats, args.epochs, args.batch_size, args.seed))
    times = startup(args.startup_runs)
    print(
        f"\nTraining: {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, "
        f"early stopping off; median of {args.repeats} runs per side.\n"
    )
    if results:
        print(training_table(results, tf_import))
    print(f"\nStartup: median of {args.startup_runs} runs after one warm-up.\n")
    print(startup_table(times))
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "settings": vars(args),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "tf_import_seconds": tf_import,
        "training": results,
        "startup_seconds": times,
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
    (RESULTS / "speed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nwrote {(RESULTS / 'speed.json').relative_to(ROOT)} ({report['bench_seconds']} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
