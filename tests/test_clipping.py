"""model.numeric_clipping: smooth: standardised numeric inputs bent toward at most CLIP, so a
row far outside the training range reaches the network where it has seen rows."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import tiny_spec

from taskfit.model.build import CLIP, build_from_stats, named_inputs, smooth_clip
from taskfit.plan.checking import check_spec
from taskfit.plan.plan import plan_summary
from taskfit.training.fit import make_splits

SMOOTH = {"model.numeric_clipping": "smooth"}


def test_the_curve_keeps_small_values_and_bounds_large_ones() -> None:
    x = np.array([[0.0, 0.3, -1.0, 10.0, -1e6]], dtype=np.float32)
    y = keras.ops.convert_to_numpy(smooth_clip(keras.ops.convert_to_tensor(x)))[0]
    assert y[:2] == pytest.approx([0.0, 0.3], abs=0.01)
    assert y[2] == pytest.approx(-1 / np.sqrt(1 + 1 / 9))
    assert 2.8 < y[3] < CLIP and -CLIP <= y[4] < -2.99


def test_asked_for_it_is_in_the_plan_and_the_saved_model(tmp_path: Path) -> None:
    checked = check_spec(tiny_spec(tmp_path, "regression", epochs=1), SMOOTH)
    assert checked.plan.clipping
    assert checked.resolved()["model"]["numeric_clipping"] == "smooth"
    assert "smooth clipping of numeric inputs" in plan_summary(checked.plan)
    splits = make_splits(checked)
    columns = splits.columns
    models = build_from_stats(checked.plan, columns.numeric, columns.categorical, splits.stats)
    rows = splits.part(0).head(4)
    far = rows.take(slice(0, 1))
    far.numeric[:] = 1e6  # far beyond every training row
    inner = keras.Model(models.fit.input, models.fit.get_layer("normalization").output)
    clipped = keras.ops.convert_to_numpy(smooth_clip(inner(models.pack(far))))
    assert np.all(np.abs(clipped) <= CLIP)
    path = tmp_path / "model.keras"
    models.named.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode: no custom layer, no Lambda
    x = rows.named(columns.numeric)
    assert np.asarray(loaded.predict(named_inputs(x), verbose=0)) == pytest.approx(
        np.asarray(models.named.predict(named_inputs(x), verbose=0)), rel=1e-5
    )
    plain = check_spec(tiny_spec(tmp_path, "regression", epochs=1))
    assert not plain.plan.clipping and "clipping" not in plan_summary(plain.plan)


@pytest.mark.additions
@pytest.mark.parametrize(("task", "clipped"), [("regression", True), ("binary", False)])
def test_a_small_table_is_clipped_by_default_where_the_table_says(
    tmp_path: Path, task: str, clipped: bool
) -> None:
    """recipes/small_tables.yaml gives the default by task (regression: smooth, measured in
    docs/benchmarks.md); the spec overrides it either way."""
    spec = tiny_spec(tmp_path, task, epochs=1)
    checked = check_spec(spec)
    assert checked.plan.clipping is clipped
    assert checked.resolved()["model"]["numeric_clipping"] == ("smooth" if clipped else "none")
    other = "none" if clipped else "smooth"
    assert check_spec(spec, {"model.numeric_clipping": other}).plan.clipping is not clipped
