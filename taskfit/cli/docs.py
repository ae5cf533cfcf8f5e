"""README sections generated from the one definition of each thing (a test keeps them equal).

python -m taskfit.cli.docs README.md   # rewrites the sections between the README's markers
"""

from __future__ import annotations

from taskfit.config.schema import reference
from taskfit.recipe.table import TASKS, load_table
from taskfit.spec.spec import Spec


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
        f"Loss weightings for heads: {', '.join(table.weightings)}."
    )
    small = table.small_tables
    lines.append("")
    lines.append(
        f"A small table (one task, in memory, at most {small.up_to_rows} labelled rows) also gets "
        f"{small.members} members (`model.members`), the {small.numeric_embedding} numeric "
        "embedding (`model.numeric_embedding`) and a refit on train + validation "
        f"(`training.refit`: {'on' if small.refit else 'off'}); see Quality on real tables."
    )
    return "\n".join(lines)


def rewrite(text: str) -> str:
    """`text` with its generated sections (between `<!-- name:start/end -->`) made anew."""
    for name, body in (("spec", spec_reference()), ("table", table_reference())):
        start, end = f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"
        head, rest = text.split(start)
        text = head + start + body + end + rest.split(end, 1)[1]
    return text


if __name__ == "__main__":
    import sys
    from pathlib import Path

    readme = Path(sys.argv[1])
    readme.write_text(rewrite(readme.read_text(encoding="utf-8")), encoding="utf-8")
