"""data.streaming at scale, measured in one run: peak memory while training one epoch on
generated CSVs of about 0.5, 2 and 4 GB, and ingest speed against pyarrow's own reader.

Each file has 24 numeric columns (a few with gaps), 4 categorical ones (8 to 5000 values, so
both one-hot and embeddings) and a binary label that depends on both kinds. Each training run
is `taskfit train` in its own process under /usr/bin/time -v (epochs 1, batch 4096, streaming
on): the scan, one training epoch, the validation and test passes, the plots and the save.

Ingest: a 1M x 32 numeric CSV read whole by pyarrow.csv.read_csv (as a user calls it, and
given the column types, which taskfit knows from check), against taskfit's chunk reader
(stream.chunks: typed numpy blocks, gap and infinity checks, labels, the row hash), best of
three each, in turn.

Targets: peak RSS grows by less than 15% from the smallest file to the largest and
stays well under the file size; ingest within 1.2x of pyarrow's read time.

    .venv/bin/python bench/bench_stream.py [--sizes 0.5 2 4] [--folder /tmp/taskfit-stream]

Prints a markdown table and writes bench/results/stream.json. Needs about 7 GB of disk.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
TASKFIT = Path(sys.executable).with_name("taskfit")
BLOCK_ROWS = 250_000  # rows generated and written at a time
CATEGORIES = {"region": 8, "plan": 30, "shop": 400, "product": 5000}


def block(rng: np.random.Generator, rows: int) -> pa.Table:
    numeric = rng.normal(size=(rows, 24)).round(3)
    numeric[rng.random((rows, 24)) < 0.02] = np.nan  # gaps in every column, now and then
    columns: dict[str, Any] = {f"x{i}": numeric[:, i] for i in range(24)}
    codes = {name: rng.integers(0, k, rows) for name, k in CATEGORIES.items()}
    for name, code in codes.items():
        columns[name] = pa.array([f"{name}_{c}" for c in code])
    signal = np.nan_to_num(numeric[:, 0]) - np.nan_to_num(numeric[:, 1]) + (codes["region"] < 3)
    columns["y"] = (signal + rng.normal(scale=0.5, size=rows) > 0.5).astype(int)
    return pa.table(columns)


def write_csv(path: Path, gigabytes: float, seed: int) -> int:
    """Blocks of rows appended until the file reaches the size; returns its rows."""
    rng = np.random.default_rng(seed)
    rows = 0
    with pa.OSFile(str(path), "wb") as sink:
        writer = None
        while sink.tell() < gigabytes * 1e9:
            table = block(rng, BLOCK_ROWS)
            writer = writer or pacsv.CSVWriter(sink, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        assert writer is not None
        writer.close()
    return rows


def train_one_epoch(csv: Path, folder: Path) -> dict[str, Any]:
    spec = folder / f"{csv.stem}.yaml"
    spec.write_text(
        f"name: {csv.stem}\ntask: binary\n"
        f"data: {{source: {csv}, label: y, streaming: true, validation_fraction: 0.1}}\n"
        "training: {epochs: 1, batch_size: 4096, early_stopping: null}\n"
    )
    command = ["/usr/bin/time", "-v", str(TASKFIT), "train", str(spec), "--json"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--output", str(folder / "runs")], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"taskfit train failed on {csv}:\n{done.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    assert peak is not None, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    return {
        "file_gb": round(csv.stat().st_size / 1e9, 2),
        "peak_rss_mb": round(int(peak.group(1)) / 1024),
        "seconds": round(seconds, 1),
        "train_rows": doc["train_rows"],
        "test_accuracy": round(doc["metrics"]["accuracy"], 4),
    }


def ingest(folder: Path, repeats: int = 3) -> dict[str, float]:
    """pyarrow's whole-file read against taskfit's chunk reader on a 1M x 32 numeric CSV."""
    from taskfit.feed import stream
    from taskfit.plan.checking import check_spec

    rng = np.random.default_rng(1)
    path = folder / "numeric_1m_x_32.csv"
    if not path.exists():
        x = rng.normal(size=(1_000_000, 32)).round(4)
        table = pa.table({**{f"x{i}": x[:, i] for i in range(32)}, "y": x[:, 0] * 2 + 1})
        pacsv.write_csv(table, str(path))
    spec = folder / "numeric.yaml"
    spec.write_text(f"task: regression\ndata: {{source: {path}, label: y, streaming: true}}\n")
    checked = check_spec(spec)
    from taskfit.feed.splits import data_columns

    columns = data_columns(checked.data, checked.plan)
    source = stream.StreamSource(
        path, checked.data.table.columns, columns, 0, np.empty((0, 32)), 0, 0.2, 0.2
    )
    # pyarrow as a user calls it (types inferred), and given the types taskfit knows from check
    typed = pacsv.ConvertOptions(column_types={c: pa.float64() for c in source.header})
    readers = {
        "pyarrow": lambda: pacsv.read_csv(str(path)).num_rows,
        "pyarrow_typed": lambda: pacsv.read_csv(str(path), convert_options=typed).num_rows,
        "taskfit": lambda: sum(len(block.rows) for block in source.blocks()),
    }
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(repeats):
        for name, read in readers.items():
            started = time.perf_counter()
            rows = read()
            times[name].append(time.perf_counter() - started)
            assert rows == 1_000_000
    best = {k: min(v) for k, v in times.items()}
    return {
        "file_mb": round(path.stat().st_size / 1e6),
        **{f"{name}_s": round(seconds, 3) for name, seconds in best.items()},
        "ratio": round(best["taskfit"] / best["pyarrow"], 3),
        "ratio_typed": round(best["taskfit"] / best["pyarrow_typed"], 3),
    }


def ingest_line(speed: dict[str, float]) -> str:
    return (
        f"ingest 1M x 32 ({speed['file_mb']} MB): pyarrow {speed['pyarrow_s']} s, taskfit "
        f"{speed['taskfit_s']} s = {speed['ratio']}x (target <= 1.2x: "
        f"{'PASS' if speed['ratio'] <= 1.2 else 'MISS'}); pyarrow given the column types "
        f"{speed['pyarrow_typed_s']} s = {speed['ratio_typed']}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2.0, 4.0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/taskfit-stream"))
    parser.add_argument(
        "--ingest-only", action="store_true", help="only the ingest comparison (best of 5)"
    )
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    if args.ingest_only:
        print(ingest_line(ingest(args.folder, repeats=5)))
        return
    runs = []
    for i, size in enumerate(sorted(args.sizes)):
        csv = args.folder / f"stream_{size:g}gb.csv"
        if not csv.exists():
            started = time.perf_counter()
            rows = write_csv(csv, size, seed=i)
            print(f"wrote {csv} ({rows} rows) in {time.perf_counter() - started:.0f} s")
        runs.append(train_one_epoch(csv, args.folder))
        print(runs[-1], flush=True)
    speed = ingest(args.folder)
    growth = runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"] - 1
    result = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "runs": runs,
        "rss_growth": round(growth, 3),
        "rss_growth_target_met": growth < 0.15,
        "largest_rss_over_file": round(runs[-1]["peak_rss_mb"] / (runs[-1]["file_gb"] * 1e3), 3),
        "ingest": speed,
        "ingest_target_met": speed["ratio"] <= 1.2,
    }
    print("\n| file | rows (train) | peak RSS | wall | test accuracy |\n|---|---|---|---|---|")
    for run in runs:
        print(
            f"| {run['file_gb']} GB | {run['train_rows']} | {run['peak_rss_mb']} MB | "
            f"{run['seconds']} s | {run['test_accuracy']} |"
        )
    print(
        f"\npeak RSS growth smallest -> largest: {growth:+.1%} (target < 15%: "
        f"{'PASS' if result['rss_growth_target_met'] else 'MISS'}); largest RSS / file size: "
        f"{result['largest_rss_over_file']:.1%}"
    )
    print(ingest_line(speed))
    out = ROOT / "bench" / "results" / "stream.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
