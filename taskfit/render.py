"""Turning results into text for people (rich tables) or machines (JSON, YAML).

rich loads only when a table is drawn: JSON and YAML output skip its import.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from rich.table import Table


def dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def recommendation_table(row: dict[str, Any]) -> Table:
    from rich.table import Table

    out = row["output_layer"]
    table = Table(title=f"{row['task']}: {row['summary']}", show_header=True, title_justify="left")
    table.add_column("choice", style="bold")
    table.add_column("recommended")
    table.add_column("why / when")
    table.add_row("labels", row["labels"]["format"], row["labels"]["looks_like"])
    table.add_row("output layer", f"Dense({out['units']}, {out['activation']})", out["why"])
    for name, loss in row["losses"].items():
        label = "loss" if name == row["loss"] else "  alternative"
        params = ", ".join(f"{k}={v}" for k, v in loss.get("params", {}).items())
        table.add_row(label, name + (f" ({params})" if params else ""), loss["when"])
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
    return table


def rows_table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def print_table(table: Table) -> None:
    from rich.console import Console

    Console(soft_wrap=False).print(table)
