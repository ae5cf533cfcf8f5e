"""`taskfit report RUN_DIR`: what a run was and what it achieved, read back from its folder
(no TensorFlow): the spec's essentials, the table's choices, the test metrics, epochs and time.
The terminal gets rich tables; `report.html` in the run folder gets the same with every plot
embedded, one file that opens offline."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit.config.readable import check_regular
from taskfit.errors import DataError, TaskfitError
from taskfit.plan.plan import Head, described
from taskfit.report.diagnosis import curves_say
from taskfit.runfolder.files import (
    checked_status,
    count_epochs,
    read_facts,
    read_history,
    read_metrics,
    read_object,
    read_reason,
    read_record,
    run_name,
    training_process,
    write_text,
)
from taskfit.runfolder.layout import RunFolder
from taskfit.runfolder.opened import Run, open_run

NOT_RECORDED = "not recorded (the run did not finish)"


@dataclass(frozen=True)
class Report:
    run: Run
    summary: dict[str, str]  # spec essentials, epochs, time
    choices: dict[str, str]  # what the table chose for the whole model
    heads: list[dict[str, str]]  # several heads: per head its output layer, loss, metrics
    metrics: dict[str, float]  # metrics.json: on the test split, or out-of-fold
    plots: list[Path]  # relative to the run folder
    metrics_on: str = "test"  # run.json's metrics_on (older runs: always the test split)
    explained: dict[str, Any] | None = None  # explain.json: `taskfit explain`'s importance

    @property
    def title(self) -> str:
        return f"taskfit run {self.run.folder.name}"

    def sections(self) -> list[tuple[str, list[str], list[list[str]]]]:
        """(title, header, rows) of each table, for the terminal and the page alike; a header
        of empty names is a two-column key/value table."""
        found = [
            ("run", ["", ""], [list(kv) for kv in self.summary.items()]),
            ("the table's choices", ["", ""], [list(kv) for kv in self.choices.items()]),
        ]
        if self.heads:
            found.append(("heads", list(self.heads[0]), [list(h.values()) for h in self.heads]))
        if self.metrics:
            values = [[k, f"{v:.4g}"] for k, v in self.metrics.items()]
            found.append((f"{self.metrics_on} metrics", ["metric", "value"], values))
        if self.explained:
            found.append(self._importance(self.explained))
        return found

    @staticmethod
    def _importance(doc: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
        title = f"column importance (taskfit explain, on {doc.get('on')}, {doc.get('rows')} rows)"
        rows = [
            [head, item["column"], f"{item['mean']:+.4g} {said['score']}", f"{item['std']:.2g}"]
            for head, said in doc.get("heads", {}).items()
            for item in said.get("importance", [])
        ]
        return title, ["head", "column", "increase when shuffled", "std"], rows


def read_report(folder: Path) -> Report:
    run = open_run(folder, need_model=False)
    files = RunFolder(folder)
    facts = read_facts(folder)
    metrics = read_metrics(files.metrics) if files.metrics.exists() else {}
    plan, spec = run.plan, run.spec
    status = checked_status(folder) or "unknown"  # damaged: said, not shown as a status
    history = read_history(files.history)
    if status == "completed":  # a finished run wrote both: one gone or damaged is said
        _check_finished(files, facts, history)
    reason = read_reason(folder)
    process = training_process(folder) if status == "running" else None
    if process is not None:
        pid, alive = process
        reason = (
            f"in process {pid}"
            if alive
            else f"but its process {pid} is gone: killed or crashed before it could say; "
            f"taskfit train --resume {folder} carries on from its last finished epoch"
        )
    summary = {
        "status": status + (f" ({reason})" if reason else ""),
        "spec": spec.name or f"{run_name(folder)} (the spec file's name; the spec sets no name)",
        "data": str(spec.data.source),
        "task": plan.head.task if not plan.multi else f"{len(plan.heads)} heads",
        "label": ", ".join(run.label_columns),
        "rows": _rows(facts),
        "epochs": _epochs(facts, spec.training.epochs, folder),
        "time": _time(facts) + _processes(facts),
        "versions": ", ".join(f"{k} {v}" for k, v in facts.get("versions", {}).items())
        or NOT_RECORDED,
    }
    choices = {}
    if not plan.multi:  # one head: its choices lead; several get a table of their own
        head = _head(plan.head)
        choices = {"labels": plan.head.labels.describe()}
        choices |= {k: head[k] for k in ("output", "loss", "metrics")}
        if plan.head.task == "regression":
            choices["target"] = plan.head.target_text
    schedule = plan.schedule
    choices |= {
        "layers": " -> ".join(f"{x.units} {x.activation}" for x in plan.layers) or "(none)",
        "optimizer": _call(plan.optimizer.name, plan.optimizer.params),
        "schedule": _call(schedule.name, schedule.params) if schedule else "none (constant rate)",
        "batch size": str(spec.training.batch_size),
        "early stopping": _stopping(run),
    }
    if plan.additions:
        choices["additions"] = ", ".join(plan.additions)
    suspects = facts.get("memorisable")
    said = curves_say(spec, history, suspects) if status == "completed" else []
    if said:
        summary["diagnosis"] = " / ".join(said)
    heads = []
    if plan.multi:
        choices["sharing"] = described(plan.sharing)
        choices["loss weighting"] = described(plan.weighting)
        heads = [_head(h) for h in plan.heads]
    linked = files.plots.is_symlink()  # its PNGs are not this run's: never followed
    shown_plots = [] if linked else files.plots.rglob("*.png")
    found = sorted((p.relative_to(folder) for p in shown_plots), key=_order)
    plots = [plot for plot in found if _drawn(folder / plot)]
    if left_out := [str(plot) for plot in found if plot not in plots]:
        summary[LEFT_OUT] = ", ".join(left_out) + " (not a PNG file; draw them again)"
    if linked:
        summary[LEFT_OUT] = (
            f"all: {files.plots.name}/ is a link, not the run's own folder; taskfit does not "
            "follow it (remove the link; a new run draws the plots)"
        )
    metrics_on = facts.get("metrics_on") or "test"
    explained = _explained(files.explained)
    if explained is None and (files.explained.exists() or files.explained.is_symlink()):
        summary["importance left out"] = (
            f"{files.explained.name} is not what taskfit explain writes (damaged or another "
            f"file); taskfit explain {folder} writes it again"
        )
    return Report(run, summary, choices, heads, metrics, plots, metrics_on, explained)


def _check_finished(files: RunFolder, facts: dict[str, Any], history: dict[str, Any]) -> None:
    """run.json, metrics.json and history.csv as a completed run leaves them (a DataError
    naming the file otherwise; "not recorded (the run did not finish)" would misstate a
    completed run)."""
    if not facts:
        read_object(files.facts)  # says what is wrong: missing, a list, a pipe
    lacking = [n for n in ("epochs", "rows", "seconds", "fit_seconds") if n not in facts]
    if lacking:
        raise DataError(
            f"{files.facts}: has no {', '.join(lacking)}, though the run completed; it is "
            "damaged or not what taskfit wrote"
        )
    if not files.metrics.exists():
        read_object(files.metrics)  # a completed run wrote it, empty or not
    path = files.history
    if not history:
        if path.exists():  # a pipe or a device in its place: says which
            check_regular(path, str(path), DataError)
        what = "holds no epoch" if path.exists() else "is missing"
        raise DataError(
            f"{path}: {what}, though the run completed; it is damaged or not what taskfit wrote"
        )


def _explained(path: Path) -> dict[str, Any] | None:
    """explain.json as `taskfit explain` writes it; None when absent or not of that shape."""
    doc = read_record(path)
    heads = doc.get("heads")
    if not isinstance(heads, dict):
        return None
    for said in heads.values():
        items = said.get("importance") if isinstance(said, dict) else None
        if not isinstance(items, list) or not all(
            isinstance(i, dict)
            and isinstance(i.get("column"), str)
            and all(isinstance(i.get(k), int | float) for k in ("mean", "std"))
            for i in items
        ):
            return None
        if not isinstance(said.get("score"), str):
            return None
    return doc


LEFT_OUT = "plots left out"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOT_BYTES = 16 << 20  # taskfit's plots are about 50 KB at 110 dpi


def _drawn(path: Path) -> bool:
    """A plot is embedded only if it is a regular PNG file of a plot's size: a folder, a pipe (a
    read would wait), a link or a foreign file in its place is left out, and the report says
    so."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > PLOT_BYTES:
            return False
        with path.open("rb") as f:
            return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def _order(plot: Path) -> tuple[int, str, bool, str]:
    """The whole run's plots before each head's; learning curves first in each folder."""
    return len(plot.parts), str(plot.parent), plot.name != "learning_curves.png", plot.name


def _head(head: Head) -> dict[str, str]:
    return {
        "head": head.name,
        "task": head.task,
        "output": head.output_text,
        "loss": head.loss.summary,
        "metrics": ", ".join(head.metrics),
        "weight": str(head.weight),
        "target": head.target_transform if head.task == "regression" else "",
    }


def _call(name: str, params: dict) -> str:
    """adam(learning_rate=0.001, ...): a choice and its settings, as Keras would be called."""
    return f"{name}({', '.join(f'{k}={v}' for k, v in params.items() if v is not None)})"


def _rows(facts: dict) -> str:
    rows = facts.get("rows")
    if not rows:
        return NOT_RECORDED
    if facts.get("folds"):
        folds = f"{rows['train']} train in {facts['folds']} folds (validation out-of-fold)"
        return f"{folds}, {rows['test']} test"
    return ", ".join(f"{rows[part]} {part}" for part in ("train", "validation", "test"))


def _epochs(facts: dict, budget: int, folder: Path) -> str:
    if "epochs" not in facts:  # it never finished: history.csv has each epoch that did
        finished = count_epochs(folder)
        return "none finished" if finished is None else f"{finished} of {budget} finished"
    kept = f"; kept the weights of epoch {facts['best_epoch']}" if facts.get("best_epoch") else ""
    return f"{facts['epochs']} of {budget}{kept}"


def _time(facts: dict) -> str:
    if "seconds" not in facts:
        return NOT_RECORDED
    fitting = f", {facts['fit_seconds']:.1f} s fitting" if "fit_seconds" in facts else ""
    return f"{facts['seconds']:.1f} s in all{fitting}"


def _processes(facts: dict) -> str:
    count = facts.get("processes", 1)
    return f", on {count} processes (train --workers)" if count > 1 else ""


def _stopping(run: Run) -> str:
    stopping = run.spec.training.early_stopping
    if stopping is None:
        return "off"
    return f"on {stopping.monitor}, patience {stopping.patience}"


def write_html(report: Report) -> Path:
    """report.html: the tables and every plot (as base64 PNG) in one file, no outside links."""
    parts = [f"<h1>{_e(report.title)}</h1>"]
    parts += [_html_table(*section) for section in report.sections()]
    parts.append("<h2>plots</h2>")
    if not report.plots and LEFT_OUT in report.summary:
        parts.append(f"<p>No plot could be shown: see {LEFT_OUT} above.</p>")
    elif not report.plots:
        parts.append("<p>This run has no plots: a --smoke run, or one that did not finish.</p>")
    for plot in report.plots:
        data = base64.b64encode((report.run.folder / plot).read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{_e(str(plot))}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(str(plot))}</figcaption></figure>"
        )
    path = RunFolder(report.run.folder).report
    try:
        write_text(path, _page(report.title, "\n".join(parts)))
    except OSError as exc:
        raise TaskfitError(f"{path}: cannot write the report: {exc.strerror}") from None
    return path


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(title: str, header: list[str], rows: list) -> str:
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if any(header) else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<h2>{_e(title)}</h2><table>{head}{body}</table>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
figure { margin: 1.5em 0; }
img { max-width: 100%; }
figcaption { color: #666; font-size: 0.9em; }
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
