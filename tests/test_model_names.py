"""A column named as another part of the model (a layer taskfit names, an operation Keras
names, another column's input) is refused by `check`, before a Keras traceback at the end of
training; and the names `check` knows are all the names taskfit's models hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from taskfit.errors import DataError
from taskfit.plan.checking import check_spec
from taskfit.plan.names import name_clash
from taskfit.training.run import train

WORDS = ["red apple", "green pear", "big blue car", "small dog runs", "the cat sat", "a fox"]


def write_table(path: Path, rows: int = 160) -> None:
    """Every kind of column: numbers (one skewed), categories of few and many values, a date,
    a text; labels of every task."""
    rng = np.random.default_rng(0)
    lines = ["num,skew,city,town,when,note,y,k,price"]
    for i in range(rows):
        lines.append(
            f"{rng.normal():.3f},{rng.lognormal(0, 2):.3f},{'abcd'[i % 4]},t{i % 40},"
            f"2024-{1 + i % 12:02d}-{1 + i % 28:02d},{WORDS[i % 6]} {i},{'ny'[i % 2]},"
            f"{'pqr'[i % 3]},{rng.lognormal(5, 1):.2f}"
        )
    path.write_text("\n".join(lines) + "\n")


ONE = {"dates": ["when"], "text": ["note"]}
SPECS: dict[str, dict[str, Any]] = {
    "binary, the small-table defaults": {
        "task": "binary", "data": {**ONE, "label": "y", "ignore": ["k", "price"]},
    },
    "multiclass, packed members, clipping": {
        "task": "multiclass", "data": {**ONE, "label": "k", "ignore": ["y", "price"]},
        "model": {"members": 3, "ensemble": "packed", "numeric_clipping": "smooth"},
    },
    "regression on a log scale": {
        "task": "regression", "data": {**ONE, "label": "price", "ignore": ["y", "k"]},
    },
    "regression, the piecewise-linear embedding": {
        "task": "regression", "data": {**ONE, "label": "price", "ignore": ["y", "k"]},
        "model": {"numeric_embedding": "piecewise"},
    },
    "heads, soft sharing": {
        "heads": {"y": {"task": "binary", "label": "y"}, "price": {"task": "regression", "label": "price"}},
        "data": {**ONE, "ignore": ["k"]}, "model": {"sharing": {"name": "soft"}},
    },
    "heads, mmoe": {
        "heads": {"y": {"task": "binary", "label": "y"}, "k": {"task": "multiclass", "label": "k"}},
        "data": {**ONE, "ignore": ["price"]}, "model": {"sharing": {"name": "mmoe"}},
    },
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.additions
@pytest.mark.parametrize("kind", list(SPECS))
def test_every_name_in_a_model_is_one_check_refuses_for_a_column(kind: str, tmp_path: Path) -> None:
    write_table(tmp_path / "t.csv")
    spec = SPECS[kind]
    spec = {**spec, "data": {**spec["data"], "source": str(tmp_path / "t.csv")}}
    run = train(spec, {"training.epochs": 1}, tmp_path / "runs", verbose=0)
    named = run.model
    fit = named.get_layer("preprocess_and_body")
    columns = list(run.checked.data.features)
    heads = [h.name for h in run.checked.plan.heads]
    multi = run.checked.plan.multi
    found = {op.name for model in (named, fit) for op in model.operations} - set(columns)
    unknown = sorted(n for n in found if not name_clash([*columns, n], heads, multi))
    assert unknown == []
    # the date column's format as training read it, for predict's notes
    facts = json.loads((run.run_dir / "run.json").read_text())
    assert facts["date_formats"] == {"when": {"format": "%Y-%m-%d", "padded": [True]}}


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("plan,plan_lookup", "column plan_lookup: a layer of the column plan too"),
        ("a/b,a_b", "column a_b: its input would be named a_b, as the column a/b's is"),
        ("a,,b", "t.csv: a column has no name in the header (after a)"),
        (",a,b", "t.csv: a column has no name in the header (before a)"),
        ("numeric_block,x", "column numeric_block: a layer taskfit names so too"),
        ("cast,x", "column cast: an operation Keras names so too"),
        ("where_3,x", "column where_3: an operation Keras names so too"),
    ],
)
def test_a_column_named_as_a_part_of_the_model_is_refused(
    header: str, said: str, tmp_path: Path
) -> None:
    columns = header.split(",")
    cells = [
        ",".join("abc"[i % 3] if j == 0 else f"{i / 7:.2f}" for j in range(len(columns)))
        for i in range(40)
    ]
    lines = [f"{header},y"] + [f"{row},{'ny'[i % 2]}" for i, row in enumerate(cells)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        check_spec({"task": "binary", "data": {"source": str(tmp_path / "t.csv"), "label": "y"}})
    assert said in str(caught.value)


def test_names_near_a_part_of_the_model_are_taken(tmp_path: Path) -> None:
    lines = ["price,price_per_m2,city,city_name,mean,y"] + [
        f"{i},{i / 3:.2f},{'abc'[i % 3]},{'xyz'[i % 3]},{i % 5},{'ny'[i % 2]}" for i in range(40)
    ]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    check_spec({"task": "binary", "data": {"source": str(tmp_path / "t.csv"), "label": "y"}})


def test_a_column_with_a_slash_trains_and_predicts(tmp_path: Path) -> None:
    """Keras allows no / in a name: the input is a_b, and predict still finds it the run's."""
    from typer.testing import CliRunner

    from taskfit.cli.app import app

    lines = ["a/b,c,y"] + [f"{i / 7:.2f},{'pq'[i % 2]},{'ny'[i % 2]}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    spec = {"task": "binary", "data": {"source": str(tmp_path / "t.csv"), "label": "y"}}
    asked = {"training.epochs": 1, "model.members": 1}
    run = train(spec, asked, tmp_path / "runs", verbose=0).run_dir
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        app, ["predict", str(run), str(tmp_path / "t.csv"), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("predicted_y,")
