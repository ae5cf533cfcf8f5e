"""`taskfit serve` under load, against calling the model in-process, in one run.

A run trained with taskfit's defaults (a spec of only `task` and `data`, on a bundled table)
is served by `taskfit serve` as a whole process on the loopback. Clients send one row per request
over HTTP (each client thread keeps its connection), at concurrency 1 and 32, for a bounded
number of requests and seconds; the figures are requests/s, p50 and p99 latency, the error count
(target: zero) and the model calls the server made (micro-batching: fewer calls than requests
under load). The in-process side calls `Predictor.predict` (what `taskfit predict` runs) on one
row at a time, and on 32 rows at once, in this process, the model loaded once.

    .venv/bin/python bench/bench_serve.py [--dataset breast_cancer] [--run RUN_DIR]
        [--requests 2000] [--seconds 30]

Needs the `dev` extra. Prints a markdown table and writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TASKFIT = [sys.executable, "-c", "from taskfit.cli.app import main; main()"]
DATASETS = BENCH.parent / "taskfit" / "data" / "datasets"
LABELS = {"breast_cancer": "diagnosis", "wine": "cultivar", "diabetes": "progression"}
TASKS = {"breast_cancer": "binary", "wine": "multiclass", "diabetes": "regression"}


def train(dataset: str, folder: Path) -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        f"task: {TASKS[dataset]}\ndata: {{source: {dataset}, label: {LABELS[dataset]}}}\n"
    )
    out = subprocess.run(
        [*TASKFIT, "train", str(spec), "--json", "--output", str(folder / "runs")],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(json.loads(out.stdout)["run_dir"])


def rows_of(dataset: str) -> list[dict[str, Any]]:
    with (DATASETS / f"{dataset}.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row.pop(LABELS[dataset])
    return [{k: float(v) for k, v in row.items()} for row in rows]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(latencies: list[float], seconds: float, errors: int) -> dict[str, Any]:
    return {
        "requests": len(latencies) + errors,
        "per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "errors": errors,
    }


def load(port: int, rows: list[dict[str, Any]], clients: int, requests: int, seconds: float):
    """`clients` threads, each with its own kept-alive connection, sending one row a request
    until `requests` are sent or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    per_client = max(1, requests // clients)
    bodies = [json.dumps(row).encode() for row in rows]

    def client(k: int) -> tuple[list[float], int]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        times, errors = [], 0
        for i in range(per_client):
            if time.monotonic() > deadline:
                break
            body = bodies[(k * per_client + i) % len(bodies)]
            start = time.perf_counter()
            try:
                connection.request("POST", "/predict", body, {"content-type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200 and b"predictions" in payload
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                times.append(time.perf_counter() - start)
            else:
                errors += 1
        connection.close()
        return times, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - start
    return [t for times, _ in results for t in times], sum(e for _, e in results), elapsed


def health(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/health")
    doc = json.loads(connection.getresponse().read())
    connection.close()
    return doc


def serve_side(run: Path, rows: list[dict[str, Any]], requests: int, seconds: float):
    command = [*TASKFIT, "serve", str(run), "--port", "0"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    found = None
    assert proc.stderr is not None
    while found is None:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit("taskfit serve ended before listening")
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    port = int(found[1])
    results = {}
    try:
        load(port, rows, 1, 50, seconds)  # warm-up: the first calls trace the model
        for clients, asked in ((1, max(1, requests // 4)), (32, requests)):
            before = health(port)
            latencies, errors, elapsed = load(port, rows, clients, asked, seconds)
            after = health(port)
            results[f"serve, concurrency {clients}"] = {
                **figures(latencies, elapsed, errors),
                "model_calls": after["model_calls"] - before["model_calls"],
            }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return results


def in_process_side(run: Path, rows: list[dict[str, Any]], requests: int, seconds: float):
    """Predictor.predict in this process: eagerly (as `taskfit predict` calls the model, once),
    and traced (as the server calls it), on one row a call and on 32."""
    from taskfit.inference.predict import Predictor
    from taskfit.serve.rows import as_table

    eager = Predictor.load(run)
    traced = Predictor.load(run, traced=True)
    inputs = (*eager.run.numeric, *eager.run.categorical)
    results = {}
    for name, predictor, size in (
        ("eager", eager, 1),
        ("traced", traced, 1),
        ("traced", traced, 32),
    ):
        batches = [rows[i : i + size] for i in range(0, len(rows) - size, size)]
        predictor.predict(as_table(batches[0], inputs))  # warm-up (and the trace)
        times, deadline = [], time.monotonic() + seconds
        for i in range(max(1, requests // 4 if size == 1 else requests // 32)):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            predictor.predict(as_table(batches[i % len(batches)], inputs))
            times.append(time.perf_counter() - start)
        stats = figures(times, sum(times), 0)
        stats["rows_per_second"] = round(size * len(times) / sum(times), 1)
        results[f"in-process predict, {name}, {size} row(s) a call"] = stats
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| side | requests | requests/s | rows/s | p50 ms | p99 ms | errors | model calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side, r in results.items():
        calls, rows = r.get("model_calls", ""), r.get("rows_per_second", r["per_second"])
        lines.append(
            f"| {side} | {r['requests']} | {r['per_second']} | {rows} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['errors']} | {calls} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="breast_cancer", choices=sorted(LABELS))
    parser.add_argument("--run", type=Path, help="serve this run instead of training one")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0, help="bound on each load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = args.run or train(args.dataset, Path(folder))
        rows = rows_of(args.dataset)
        results = serve_side(run, rows, args.requests, args.seconds)
        results |= in_process_side(run, rows, args.requests, args.seconds)
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    doc = {"dataset": args.dataset, "machine": platform.platform(), "results": results}
    (RESULTS / "serve.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
