"""How an in-memory table's rows reach Keras's fit: one stream for the whole fit, each epoch's
rows in their own order, and compiled calls that end where epochs end."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from helpers import tiny_spec

from taskfit.feed.splits import epoch_order
from taskfit.plan.checking import check_spec
from taskfit.recipe.table import load_table
from taskfit.training import feeding
from taskfit.training.fit import compile_plan, make_splits, steps_per_execution


def test_each_epoch_has_its_own_order_and_a_resumed_stream_goes_on_from_its_epoch(
    tmp_path: Path,
) -> None:
    checked = check_spec(tiny_spec(tmp_path, "regression", epochs=3, batch_size=8), {})
    plan, splits = checked.plan, make_splits(checked)
    models, _, _, _ = compile_plan(keras, plan, splits)
    _, y, _ = feeding.training_arrays(models, plan, splits, None)
    data = feeding.fit_data(models, plan, splits, 8)
    steps = data["steps_per_epoch"]
    assert steps == -(-len(y) // 8)

    def epochs_from(first: int, count: int) -> list[np.ndarray]:
        splits.epoch[0] = first  # what the EpochShuffle callback sets as the first epoch begins
        batches = iter(data["x"])  # the fit's one iterator
        return [
            np.concatenate([np.asarray(next(batches)[1]) for _ in range(steps)])
            for _ in range(count)
        ]

    unbroken = epochs_from(0, 3)
    for epoch, seen in enumerate(unbroken):  # every row once, in that epoch's order
        np.testing.assert_array_equal(seen, y[epoch_order(splits.seed, epoch, len(y))])
    assert not np.array_equal(unbroken[0], unbroken[1])
    resumed = epochs_from(2, 1)  # a run resumed at its third epoch
    np.testing.assert_array_equal(resumed[0], unbroken[2])


def test_a_compiled_call_never_reads_into_the_next_epoch() -> None:
    most = load_table().fitting.steps_per_execution
    for steps in range(1, 200):
        per_call = steps_per_execution(steps)
        assert steps % per_call == 0 and per_call <= most
        assert not any(steps % d == 0 for d in range(per_call + 1, min(most, steps) + 1))


def test_no_feed_runs_tf_datas_autotuning(tmp_path: Path) -> None:
    """Its background thread held up the end of a fit by 1-2 s in some runs (feeding.py)."""
    for streaming in ("false", "true"):
        spec = tiny_spec(tmp_path, "binary", epochs=1, batch_size=8)
        text = spec.read_text().replace("label: y}", f"label: y, streaming: {streaming}}}")
        spec.write_text(text)
        checked = check_spec(spec, {})
        plan, splits = checked.plan, make_splits(checked)
        assert splits.in_memory is (streaming == "false")
        models, _, _, _ = compile_plan(keras, plan, splits)
        feeds = [feeding.fit_data(models, plan, splits, 8)["x"]]
        feeds.append(feeding.validation_feed(models, plan, splits))
        for feed in feeds:
            assert feed.options().autotune.enabled is False
