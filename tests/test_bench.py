"""The benchmarks' own plumbing (no training): they must keep up with the library they measure."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_speed  # noqa: E402


@pytest.mark.additions  # the real defaults: the spec must turn the small-table additions off
@pytest.mark.parametrize("dataset", list(bench_speed.BUNDLED))
def test_hand_written_side_trains_on_taskfits_split(dataset: str, tmp_path: Path) -> None:
    from taskfit.plan.checking import check_spec

    spec = bench_speed.write_spec(tmp_path, dataset, epochs=20, batch_size=32, seed=0)
    assert check_spec(spec).plan.additions == []  # the network the hand-written side builds
    rows = bench_speed.check_same_split(spec, dataset, seed=0)
    assert rows == {"breast_cancer": 365, "digits": 1151, "diabetes": 283}[dataset]


@pytest.mark.parametrize("name", list(bench_speed.TABLES))
def test_speed_tables_are_split_alike_by_every_side(name: str, tmp_path: Path) -> None:
    """The hand-written MLP and the boosted models read the CSV as pandas does and draw
    taskfit's split from it: the same training rows, and taskfit's spec holds task and data only."""
    import yaml

    table = bench_speed.TABLES[name]
    files = bench_speed.write_table(table, tmp_path)
    assert set(yaml.safe_load(files.spec.read_text())) == {"task", "data"}
    assert 300 <= files.n_rows <= 50_000
    rows = bench_speed.check_table_split(table, files)
    assert abs(rows - 0.64 * files.n_rows) < 5  # 60/20/20 of 0.8 x 0.8, rounded per class
    assert len(files.rows.read_text().splitlines()) == bench_speed.PREDICT_ROWS + 1


def test_mlp_variants_bench_feeds_numbers_first_and_one_loss_per_member(tmp_path: Path) -> None:
    """bench_mlp_variants slices the numeric columns off the front of its matrices for the
    periodic embedding, and the refit matrices hold train + validation."""
    import bench_mlp_variants as variants
    from bench_quality import DATASETS, taskfit_splits, write_inputs

    from taskfit.data.columns import CATEGORICAL, NUMERIC
    from taskfit.model.keras_setup import import_keras
    from taskfit.plan.checking import check_spec

    spec, _ = write_inputs(DATASETS["credit_data"], tmp_path)  # has gaps: indicator columns
    checked = check_spec(spec)
    numeric, cats = checked.data.of_kind(NUMERIC), checked.data.of_kind(CATEGORICAL)
    splits = taskfit_splits(checked, seed=0)
    assert splits.validation is not None
    train, validation, refit, test, refit_test = variants.features(splits, numeric, cats)
    assert len(train) == len(splits.train) and len(validation) == len(splits.validation)
    assert len(refit) == len(splits.train) + len(splits.validation)
    assert len(test) == len(refit_test) == len(splits.test)
    numbers, after = train[:, : len(numeric)], train[:, len(numeric) :]
    assert np.allclose(numbers.mean(axis=0), 0.0, atol=1e-4)  # standardised on train
    assert set(np.unique(after)) == {0.0, 1.0}  # gap indicators and one-hot columns
    assert train.shape[1] > len(numeric) + sum(
        len(set(splits.train.categorical[c].ravel())) for c in cats
    )

    keras = import_keras()
    variant = variants.Variant("packed", periodic=True, members=3)
    model = variants.build(keras, variant, train.shape[1], len(numeric), classes=2)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 2)] * 3
    assert variants.probabilities(model, train[:5]).shape == (5, 2)


@pytest.mark.parametrize("name", ["breast_cancer", "digits", "HMDA"])
def test_calibration_bench_keeps_a_test_split_neither_choice_sees(
    name: str, tmp_path: Path
) -> None:
    """bench_calibration scores on a 20% test split; a binary table asks for threshold: auto."""
    import bench_calibration

    from taskfit.plan.checking import check_spec

    spec, task = bench_calibration.write_spec(name, tmp_path)
    checked = check_spec(spec)
    assert checked.loaded.spec.data.test_fraction == 0.2
    (head,) = checked.plan.heads
    assert head.task == task and head.threshold == ("auto" if task == "binary" else None)


@pytest.mark.parametrize("table", ["Wage", "HealthInsurance"])
def test_heads_bench_tables_check_under_every_choice(table: str, tmp_path: Path) -> None:
    """bench_heads' tables give three heads, none of whose labels is an input, under every
    sharing and weighting it runs."""
    import bench_heads

    from taskfit.plan.checking import check_spec

    spec = bench_heads.write_table(table, tmp_path)
    for choice, overrides in bench_heads.CHOICES.items():
        checked = check_spec(spec, overrides)
        heads = checked.plan.heads
        assert len(heads) == 3, choice
        labels = {column for head in heads for column in head.labels.columns}
        assert not labels & set(checked.data.features), choice
        assert checked.plan.sharing.name == overrides.get("model.sharing", "hard")
        assert checked.plan.weighting.name == overrides.get("loss_weighting", "fixed")
    assert bench_heads.parse_choice("s=model.sharing={name: soft, strength: 0.01}") == (
        "s",
        {"model.sharing": {"name": "soft", "strength": 0.01}},
    )


def test_quality_bench_judges_the_mean_gap_to_the_best_baseline_against_the_target() -> None:
    """bench_quality's seeds table: the gap on each seed is to the best baseline that ran
    (CatBoost here), the verdict is on the mean over the seeds (0.5 points, 2% of RMSE), and the
    last line is the mean over the tables."""
    import bench_quality

    def result(task: str, ours: float, best: float) -> dict[str, object]:
        others = {"histgb": 0.5, "linear": 0.5} if task != "regression" else {"histgb": 120.0}
        scores = {"taskfit": ours, "catboost": best, **others}
        return {
            "dataset": task,
            "task": task,
            "scores": {name: {"value": value} for name, value in scores.items()},
        }

    runs = [
        {"results": [result("binary", 0.80, 0.81), result("regression", 101.0, 100.0)]},
        {"results": [result("binary", 0.80, 0.798), result("regression", 102.0, 100.0)]},
    ]
    rows = bench_quality.seeds_table(runs).splitlines()
    binary = next(row for row in rows if row.startswith("| binary"))
    regression = next(row for row in rows if row.startswith("| regression"))
    assert "+1.0 / -0.2 points | +0.40 points | PASS" in binary
    assert "+1.0 / +2.0% | +1.50% | PASS" in regression
    assert "(CatBoost)" in binary
    assert rows[-1].startswith("Over the 2 tables, the mean gap: +0.95")
    assert rows[-1].endswith("MISS (target: below 0)")
    runs[1]["results"][0] = result("binary", 0.79, 0.80)  # mean gap 1.0 points: outside
    assert "| +1.00 points | MISS" in bench_quality.seeds_table(runs)
