"""The names of the parts of a model that takes the raw columns, and the column names that would
clash with them.

Keras needs every operation of a functional model to have a name of its own ("The name ... is
used 2 times in the model"), and an input is named as its column (Keras matches a dict of
inputs by name). A column named as one of taskfit's layers (`plan_lookup` beside `plan`,
`features`), as an operation Keras names itself (`cast`, `where_1`) or as another column's
input (`a/b` beside `a_b`) would make training stop with a traceback, or stop at the end when
the model is saved: `check` refuses it (name_clash). tests/test_model_names.py builds models of
every kind and holds these lists to what they contain.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NUMERIC_BLOCK = "__numeric__"  # the training model takes the numeric columns as one matrix
# ... and the category columns of few values as one matrix of their one-hot vectors
ONE_HOT_BLOCK = "__one_hot__"
# layers taskfit names whatever the columns
FIXED = frozenset({
    NUMERIC_BLOCK, ONE_HOT_BLOCK, "preprocess_and_body", "numeric_block", "one_hot_block",
    "normalization", "features", "body", "members", "members_mean", "features_per_member",
    "member_scaling", "rest_per_member", "frequencies", "frequencies_per_member", "sin_cos",
    "periodic", "periodic_flat", "embedded", "trunk", "experts", "gates", "target_scale",
    "piecewise_linear", "piecewise", "piecewise_sum", "piecewise_flat",
})  # fmt: skip
# operations Keras names after themselves (then _1, _2 ... in the order a process makes them):
# the keras.ops calls and tensor operators of taskfit's models
OPERATIONS = (
    "add", "subtract", "multiply", "true_divide", "get_item", "cast", "clip", "cos", "sin",
    "log", "log1p", "isnan", "logical_and", "logical_not", "maximum", "sqrt", "square",
    "squeeze", "sum", "where", "expand_dims", "minimum", "concatenate",
)  # fmt: skip
_OPERATION = re.compile(rf"^({'|'.join(OPERATIONS)})(_\d+)?$")
# a category, date or text column's layers: <its layer name>_<part>
COLUMN_PARTS = (
    "lookup", "one_hot", "embedding", "flat", "unit_length", "calendar", "day", "date",
    "tf_idf", "tf_idf_flat", "day_of_year", "day_of_year_slot", "day_of_year_flat",
    "weekday_of_month", "weekday_of_month_slot", "weekday_of_month_flat",
)  # fmt: skip
# a head's layers: <head> and <head>_<part>
HEAD_PARTS = (
    "tower", "gate", "gate_per_expert", "output", "temperature", "calibrated", "log",
    "log1p", "log_exp", "log1p_exp", "exp", "units",
)  # fmt: skip


def input_name(column: str) -> str:
    """A column's input: its name (Keras refuses only `/` in one)."""
    return column.replace("/", "_")


def layer_names(columns: Sequence[str]) -> dict[str, str]:
    """Column names as valid, distinct layer names (the inputs stay keyed by the column names)."""
    names: dict[str, str] = {}
    for column in columns:
        base = re.sub(r"[^0-9A-Za-z_]+", "_", column).strip("_") or "column"
        name, n = base, 2
        while name in names.values():
            name, n = f"{base}_{n}", n + 1
        names[column] = name
    return names


def name_clash(columns: Sequence[str], heads: Sequence[str], multi: bool) -> str:
    """The first feature column whose input name is another part's of the model, said with
    the fix; "" when there is none. `multi`: the heads' outputs are layers of their names
    (one task's output is inside the body)."""
    inputs = [input_name(c) for c in columns]
    bases = layer_names(columns)
    taken: dict[str, str] = {name: "a layer taskfit names so" for name in FIXED}
    for head in heads:
        for part in ("", *HEAD_PARTS) if multi else HEAD_PARTS:
            taken[f"{head}_{part}" if part else head] = f"a layer of the head {head}"
    for column in columns:
        for part in COLUMN_PARTS:
            for base in {bases[column], input_name(column)}:
                taken[f"{base}_{part}"] = f"a layer of the column {column}"
    seen: dict[str, str] = {}
    for i, (column, name) in enumerate(zip(columns, inputs, strict=True)):
        if not name:
            # beside a feature, not a header position: identifiers before it are left out
            after = f" (after {columns[i - 1]})" if i else ""
            after = after or (f" (before {columns[1]})" if len(columns) > 1 else "")
            return f"a column has no name in the header{after}; name it, or remove the column"
        if name in seen:
            return (
                f"column {column}: its input would be named {name}, as the column "
                f"{seen[name]}'s is (Keras allows no / in a name); rename one of them"
            )
        seen[name] = column
        said = taken.get(name) or ("an operation Keras names so" if _OPERATION.match(name) else "")
        if said:
            return (
                f"column {column}: {said} too, and Keras needs every part of a model to have "
                f"a name of its own; rename the column (e.g. {name}_value)"
            )
    return ""
