"""Turning results into text for people (rich tables) or machines (JSON, YAML).

rich loads only when a table is drawn: JSON and YAML output skip its import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from rich.table import Table

    from taskfit.inference.explain import Explained, RowContributions
    from taskfit.plan.checking import Checked
    from taskfit.plan.plan import Head, Plan
    from taskfit.report.compare import Compared
    from taskfit.report.report import Report
    from taskfit.training.tune import Tuned


def dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def recommendation_table(
    row: dict[str, Any], weightings: bool = False, width: int | None = None
) -> Table:
    """The table row as rich draws it; `weightings`: every loss weighting and sharing for
    several heads (else one line naming each). No name is ever cut: the column is as wide as
    the longest, and on a terminal `width` wide the last column takes what is left (rich, left
    to itself, kept it a character too wide and cut the table's right edge)."""
    from rich.table import Table

    out = row["output_layer"]
    table = Table(title=f"{row['task']}: {row['summary']}", show_header=True, title_justify="left")
    names = [*row["losses"], *row["optimizers"], *row["loss_weightings"], *row["sharings"]]
    choice, longest = 13, max(map(len, names))
    table.add_column("choice", style="bold", max_width=choice)  # "  alternative"
    table.add_column("recommended", min_width=longest, overflow="fold")
    left = None if width is None else max(20, width - 4 - (choice + 2) - (longest + 2) - 2)
    # a long metric name folds onto the next line, never cut
    table.add_column("why / when", overflow="fold", max_width=left)
    table.add_row("labels", row["labels"]["format"], row["labels"]["looks_like"])
    table.add_row("output layer", f"Dense({out['units']}, {out['activation']})", out["why"])
    for name, loss in row["losses"].items():
        label = "loss" if name == row["loss"] else "  alternative"
        params = ", ".join(f"{k}={v}" for k, v in loss.get("params", {}).items())
        table.add_row(label, name + (f" ({params})" if params else ""), loss["when"])
    table.add_row(
        "  changing",
        "schedule or blend",
        "loss: {schedule: [...]} switches losses at epochs; {blend: [...]} weighs them together",
    )
    table.add_row(
        "metrics",
        ", ".join(row["metrics"]),
        "also: " + ", ".join(row["more_metrics"]) if row["more_metrics"] else "",
    )
    layers = " -> ".join(
        f"{layer['units']} {layer['activation']}" for layer in row["hidden_layers"]
    )
    table.add_row("hidden layers", layers, "a starting point; set model.layers")
    for name, when in row["optimizers"].items():
        label = "optimizer" if name == row["optimizer"] else "  alternative"
        table.add_row(label, name, when)
    table.add_row("advice", "", row["optimizer_advice"])
    for kind, label in (("loss_weightings", "heads: weighting"), ("sharings", "heads: sharing")):
        default = next(iter(row[kind]))  # the table lists each default first
        if not weightings:
            others = ", ".join(n for n in row[kind] if n != default)
            said = f"with several heads; also {others} (--heads says when)"
            table.add_row(label, default, said)
            continue
        for name, when in row[kind].items():
            table.add_row(label if name == default else "  alternative", name, when)
    return table


def rows_table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")  # long names wrap, never lose characters
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def compare_table(result: Compared) -> Table:
    """One column per run, one row per setting or test metric (readable for a few runs); the
    best value of each metric marked *."""
    settings = ["status", "task", "data", "layers", "additions"]
    settings += ["loss", "target", "optimizer", "schedule", "epochs", "metrics_on"]
    rows = [["run", *(Path(run["run_dir"]).name for run in result.runs)]]
    rows += [[key, *(str(run[key] or "none") for run in result.runs)] for key in settings]
    rows += [[key, *values] for key, values in result.differs.items()]  # every other difference
    for metric in result.metrics:
        cells = [metric]
        for run in result.runs:
            value = run["metrics"].get(metric)
            mark = " *" if result.best.get(metric) == run["run_dir"] else ""
            cells.append("" if value is None else f"{value:.4g}{mark}")
        rows.append(cells)
    numbers = [str(i) for i in range(1, len(result.runs) + 1)]
    return rows_table("runs (* best value of each metric on the same rows)", ["", *numbers], rows)


def report_tables(report: Report) -> list[Table]:
    """`taskfit report`: the run, the table's choices, the heads (when several), the test
    metrics."""
    tables = []
    for title, header, rows in report.sections():
        table = rows_table(title, header, rows)
        table.show_header = any(header)
        tables.append(table)
    return tables


def tune_table(tuned: Tuned) -> Table:
    """Every trial, best first; the best marked *."""
    order = sorted(tuned.trials, key=lambda t: t.score, reverse=tuned.higher_is_better)
    names = list(order[0].choices)
    rows = [
        [
            f"{t.number}{' *' if t is tuned.best else ''}",
            *t.choices.values(),
            f"{t.score:.4g}",
            t.epochs,
            f"{t.seconds:.1f}",
        ]
        for t in order
    ]
    title = f"{len(order)} trials by {tuned.objective} (validation split; * best): {tuned.folder}"
    short = {"learning_rate": "rate"}
    header = ["trial", *(short.get(n, n) for n in names), tuned.objective, "epochs", "s"]
    return rows_table(title, header, rows)


def importance_tables(explained: Explained) -> list[Table]:
    """`taskfit explain`: per head, the columns by importance, the most important first."""
    tables = []
    for head in explained.heads:
        title = f"{'' if head.head == 'output' else head.head + ': '}permutation importance"
        rows = [[c, f"{m:+.4g}", f"{s:.2g}"] for c, m, s in head.ranked()]
        table = rows_table(title, ["column", f"{head.score} increase", "std"], rows)
        table.caption = (
            f"on {explained.on}: {explained.rows} rows, each column shuffled "
            f"{explained.repeats} times; {head.score} {head.baseline:.4g} unshuffled"
        )
        tables.append(table)
    return tables


def contributions_table(found: list[RowContributions]) -> list[Table]:
    """`taskfit explain --row N`: each column's contribution, the largest first."""
    tables = []
    for f in found:
        ranked = sorted(f.columns.items(), key=lambda kv: -abs(kv[1]))
        table = rows_table(
            f"row {f.row}: {f.explains} {f.prediction:.4g}",
            ["column", "contribution"],
            [[c, f"{v:+.4g}"] for c, v in ranked],
        )
        table.caption = (
            f"{f.prediction:.4g} = {f.background:.4g} (the mean over background rows) + the "
            "contributions (sampling Shapley values)"
        )
        tables.append(table)
    return tables


def print_table(table: Table) -> None:
    from rich.console import Console

    Console(soft_wrap=False).print(table)


def terminal_width() -> int:
    """The width rich draws tables to (the terminal's, or COLUMNS, or 80)."""
    from rich.console import Console

    return Console(soft_wrap=False).width


def check_document(checked: Checked) -> dict[str, Any]:
    """What `check --json` prints."""
    from taskfit.plan.checking import notes

    plan, data = checked.plan, checked.data
    return {
        "ok": True,
        "rows": data.table.n_rows,
        "streamed": data.streamed is not None,  # then `rows` are the first ones, all check reads
        "features": len(data.features),
        **_labels_document(plan),
        "columns": [
            {
                "name": c.name,
                "type": c.kind,
                "missing": c.missing,
                "distinct": c.distinct,
                "note": c.note,
            }
            for c in data.columns
        ],
        "rows_without_label": len(data.missing_rows),
        "resolved": checked.resolved(),
        "warnings": list(plan.warnings),
        "notes": notes(checked),
    }


def _labels_document(plan: Plan) -> dict[str, Any]:
    if not plan.multi:
        labels = plan.head.labels
        return {"labels": {"format": labels.format, "classes": list(labels.classes)}}
    return {"heads": [head_row(plan, head) for head in plan.heads]}


def head_row(plan: Plan, head: Head) -> dict[str, Any]:
    """One row of the head table: what `check` shows for a spec with heads."""
    return {
        "head": head.name,
        "task": head.task,
        "label": ", ".join(head.labels.columns),
        "format": head.labels.format,
        "classes": list(head.labels.classes),
        "output": head.output_text,
        "loss": head.loss.summary,
        "weight": plan.weighting.name if plan.learned_weights else head.weight,
        "layers": [layer.units for layer in head.layers],
        "target": head.target_transform if head.task == "regression" else "",
    }


def check_text(checked: Checked) -> str:
    """The table's choices (a head table for several heads), then every column with its type."""
    from taskfit.plan.plan import described

    plan, data = checked.plan, checked.data
    layers = " -> ".join(f"{layer.units} {layer.activation}" for layer in plan.layers)
    schedule = f" with {plan.schedule.name}" if plan.schedule else ""
    rows = f"{data.table.n_rows} rows"
    if data.streamed:
        rows = f"its first {rows} (streamed: the rest is read when training)"
    summary = {"data": f"{data.source}: {rows}, {len(data.features)} features"}
    if not plan.multi:
        head = plan.head
        summary |= {
            "labels": head.labels.describe(),
            **({"target": head.target_text} if head.task == "regression" else {}),
            "output": head.output_text,
            "loss": head.loss.summary,
            "metrics": ", ".join(head.metrics),
            **({"threshold": head.threshold_text} if head.threshold is not None else {}),
        }
    elif cuts := [f"{h.name} {h.threshold_text}" for h in plan.heads if h.threshold is not None]:
        summary["threshold"] = "; ".join(cuts)
    summary["layers" if not plan.multi else "shared"] = layers or "(none)"
    summary["optimizer"] = plan.optimizer.name + schedule
    if plan.multi:
        summary["sharing"] = described(plan.sharing)
        summary["weighting"] = described(plan.weighting)
    if plan.additions:  # the small-table defaults, or what the spec asked for
        summary["additions"] = ", ".join(plan.additions)
    lines = [f"  {name:<10}{text}" for name, text in summary.items()]
    if plan.multi:
        lines.append("")
        lines += _aligned(
            ["head", "task", "label", "format", "output", "loss", "weight", "layers", "target"],
            [
                [str(v) for k, v in head_row(plan, head).items() if k != "classes"]
                for head in plan.heads
            ],
        )
    lines.append("")
    lines += _aligned(
        ["column", "type", "missing", "distinct", ""],
        [[c.name, c.kind, str(c.missing), str(c.distinct), c.note] for c in data.columns],
    )
    return "\n".join(lines) + "\n"


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    """Plain left-aligned columns, two spaces apart (check's output stays greppable)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        ("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))).rstrip()
        for r in [header, *rows]
    ]


def baseline_text(baseline: dict[str, dict[str, Any]]) -> str:
    """The multi-task model against each head trained alone."""
    rows = [
        [
            head,
            r["metric"],
            f"{r['multi_task']:.4g}",
            f"{r['single_task']:.4g}",
            f"{r['difference']:+.2f} {r['unit']}",
            r["verdict"],
        ]
        for head, r in baseline.items()
    ]
    header = ["head", "metric", "multi-task", "alone", "difference", "multi-task vs alone"]
    lines = _aligned(header, rows)
    note = "  (difference > 0: the multi-task model is better; one seed, test split)"
    return "\n".join(["", *lines, note, ""])


def confusion_text(confusion: dict[str, dict[str, int]]) -> str:
    """Actual classes down, predicted across."""
    classes = list(confusion)
    width = max(len(c) for c in [*classes, "actual"])
    cell = {c: max(len(c), 5) for c in classes}
    lines = [
        f"\n{'actual':<{width}}  predicted",
        f"{'':<{width}}  " + "  ".join(f"{c:>{cell[c]}}" for c in classes),
    ]
    for actual, row in confusion.items():
        lines.append(f"{actual:<{width}}  " + "  ".join(f"{row[c]:>{cell[c]}}" for c in classes))
    return "\n".join(lines) + "\n"
