"""model.numeric_clipping: smooth: standardised numeric inputs bent toward at most its bound (3
by default), so a row far outside the training range reaches the network where it has seen
rows."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import tiny_spec

from taskfit.errors import SpecError
from taskfit.model.build import build_from_stats, named_inputs, smooth_clip
from taskfit.plan.checking import check_spec
from taskfit.plan.plan import plan_summary
from taskfit.recipe.table import load_table
from taskfit.training.fit import make_splits

SMOOTH = {"model.numeric_clipping": "smooth"}
CLIP = load_table().small_tables.clippings["smooth"].defaults()["bound"]


def test_the_curve_keeps_small_values_and_bounds_large_ones() -> None:
    x = np.array([[0.0, 0.3, -1.0, 10.0, -1e6]], dtype=np.float32)
    y = keras.ops.convert_to_numpy(smooth_clip(keras.ops.convert_to_tensor(x), 3.0))[0]
    assert y[:2] == pytest.approx([0.0, 0.3], abs=0.01)
    assert y[2] == pytest.approx(-1 / np.sqrt(1 + 1 / 9))
    assert 2.8 < y[3] < CLIP and -CLIP <= y[4] < -2.99


def test_asked_for_it_is_in_the_plan_and_the_saved_model(tmp_path: Path) -> None:
    checked = check_spec(tiny_spec(tmp_path, "regression", epochs=1), SMOOTH)
    assert checked.plan.clipped
    assert checked.resolved()["model"]["numeric_clipping"] == {"name": "smooth", "bound": CLIP}
    assert "smooth clipping of numeric inputs" in plan_summary(checked.plan)
    splits = make_splits(checked)
    columns = splits.columns
    models = build_from_stats(checked.plan, columns.numeric, columns.categorical, splits.stats)
    rows = splits.part(0).head(4)
    far = rows.take(slice(0, 1))
    far.numeric[:] = 1e6  # far beyond every training row
    inner = keras.Model(models.fit.input, models.fit.get_layer("normalization").output)
    clipped = keras.ops.convert_to_numpy(smooth_clip(inner(models.pack(far)), CLIP))
    assert np.all(np.abs(clipped) <= CLIP)
    path = tmp_path / "model.keras"
    models.named.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode: no custom layer, no Lambda
    x = rows.named(columns.numeric)
    assert np.asarray(loaded.predict(named_inputs(x), verbose=0)) == pytest.approx(
        np.asarray(models.named.predict(named_inputs(x), verbose=0)), rel=1e-5
    )
    plain = check_spec(tiny_spec(tmp_path, "regression", epochs=1))
    assert not plain.plan.clipped and "clipping" not in plan_summary(plain.plan)


@pytest.mark.additions
@pytest.mark.parametrize(("task", "clipped"), [("regression", True), ("binary", False)])
def test_a_small_table_is_clipped_by_default_where_the_table_says(
    tmp_path: Path, task: str, clipped: bool
) -> None:
    """recipes/small_tables.yaml gives the default by task (regression: smooth, measured in
    docs/benchmarks.md); the spec overrides it either way."""
    spec = tiny_spec(tmp_path, task, epochs=1)
    checked = check_spec(spec)
    assert checked.plan.clipped is clipped
    resolved = checked.resolved()["model"]["numeric_clipping"]
    assert resolved == ({"name": "smooth", "bound": CLIP} if clipped else "none")
    other = "none" if clipped else "smooth"
    assert check_spec(spec, {"model.numeric_clipping": other}).plan.clipped is not clipped


def test_the_bound_is_the_specs_to_set(tmp_path: Path) -> None:
    """{name: smooth, bound: 5}: the saved model bends its inputs toward 5, not the default."""
    checked = check_spec(
        tiny_spec(tmp_path, "regression", epochs=1),
        {"model.numeric_clipping": {"name": "smooth", "bound": 5.0}},
    )
    assert checked.plan.clipping.params == {"bound": 5.0}
    splits = make_splits(checked)
    columns = splits.columns
    models = build_from_stats(checked.plan, columns.numeric, columns.categorical, splits.stats)
    far = splits.part(0).head(1)
    far.numeric[:] = 1e6  # far beyond every training row
    # smooth_clip's result: the division after its square root, in the saved graph
    operations = models.fit.operations
    sqrt = next(i for i, op in enumerate(operations) if type(op).__name__ == "Sqrt")
    clip = operations[sqrt + 1]
    clipped = keras.Model(models.fit.input, clip.output)(models.pack(far))
    assert np.asarray(clipped) == pytest.approx(5.0, rel=1e-3)
    with pytest.raises(SpecError, match=r"model\.numeric_clipping\.bound: must be a number > 0"):
        check_spec(
            tiny_spec(tmp_path, "regression", epochs=1),
            {"model.numeric_clipping": {"name": "smooth", "bound": 0}},
        )
