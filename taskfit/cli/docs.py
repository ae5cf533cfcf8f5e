"""Docs sections generated from the one definition of each thing (a test keeps them equal).

python -m taskfit.cli.docs docs/   # rewrites the sections between the markers of every page there
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from taskfit.config.describe import reference
from taskfit.recipe.table import TASKS, Named, load_table
from taskfit.spec.keys import Spec


def spec_reference() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, kind, default, doc in reference(Spec):
        lines.append(f"| `{name}` | {kind} | {default} | {doc} |")
    return "\n".join(lines)


def table_reference() -> str:
    table = load_table()
    lines = [
        "| task | labels | output layer | loss | alternatives | metrics |",
        "|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        recipe = table.recipe(task)
        units = "k" if recipe.output_units == "classes" else recipe.output_units
        act = "no activation" if recipe.output_activation == "linear" else recipe.output_activation
        for fmt, looks in recipe.label_formats.items():
            loss = recipe.recommended_loss[fmt]
            others = [n for n in recipe.losses_for(fmt) if n != loss]
            lines.append(
                f"| {task} | {looks} | Dense({units}, {act}) | {loss} | "
                f"{', '.join(others) or '-'} | {', '.join(recipe.metrics)} |"
            )
    optimizers = ", ".join(table.optimizers)
    lines.append("")
    lines.append(
        f"Optimizers: {optimizers} (default {table.default_optimizer}). "
        f"Schedules: {', '.join(table.schedules)}. Advice: {table.optimizer_advice}. "
        f"Loss weightings for heads: {', '.join(table.weightings)}; how they share the hidden "
        f"layers (`model.sharing`): {', '.join(table.sharings)}."
    )
    small = table.small_tables
    refit = (
        ", and a refit on train + validation (`training.refit`)."
        if small.refit
        else "; a refit on train + validation is off unless asked for (`training.refit: true`)."
    )
    bagging = (
        ", bagged: each member trained on all but its own fold of every labelled row, the "
        "metrics out-of-fold unless `data.test_fraction` is given (`training.bagging`; "
        "[the split](data.md#the-split))"
        if small.bagging
        else ""
    )
    embedding = small.embeddings[small.numeric_embedding]
    smooth = [task for task, how in small.numeric_clipping.items() if how == "smooth"]
    clipped = (
        f", smooth clipping of its numeric inputs for {' and '.join(smooth)} "
        f"(`model.numeric_clipping: {as_asked(small.clippings['smooth'])}`)"
        if smooth
        else ""
    )
    lines.append("")
    lines.append(
        f"A small table (one task, in memory, at most {small.up_to_rows} labelled rows) also gets "
        f"hidden layers of {'-'.join(str(layer['units']) for layer in small.layers)} "
        "units (`model.layers`), "
        f"{small.members} members (`model.members`, as {small.ensemble}: `model.ensemble`) and "
        f"the {small.numeric_embedding} numeric embedding "
        f"(`model.numeric_embedding: {as_asked(embedding)}`){clipped}{bagging}{refit} See "
        "[Benchmarks: the small-table additions](benchmarks.md#the-small-table-additions)."
    )
    return "\n".join(lines)


def as_asked(item: Named) -> str:
    """A table choice with its defaults, as a spec asks for it: {name: smooth, bound: 3.0}."""
    settings = "".join(f", {k}: {v}" for k, v in item.defaults().items())
    return f"{{name: {item.name}{settings}}}" if settings else item.name


SECTIONS: dict[str, Callable[[], str]] = {"spec": spec_reference, "table": table_reference}


def rewrite(text: str) -> str:
    """`text` with each generated section it has (between `<!-- name:start/end -->`) made anew."""
    for name, generate in SECTIONS.items():
        start, end = f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"
        if start not in text:
            continue
        head, rest = text.split(start, 1)
        text = head + start + generate() + end + rest.split(end, 1)[1]
    return text


def rewrite_pages(paths: list[Path]) -> list[Path]:
    """Rewrite every page given (a folder: its *.md files) whose generated sections are stale."""
    pages = [p for path in paths for p in (sorted(path.glob("*.md")) if path.is_dir() else [path])]
    changed = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        if (new := rewrite(text)) != text:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


if __name__ == "__main__":
    import sys

    for page in rewrite_pages([Path(arg) for arg in sys.argv[1:] or ["docs"]]):
        print(f"rewrote {page}")
