"""The benchmarks' own plumbing (no training): they must keep up with the library they measure."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_speed  # noqa: E402


@pytest.mark.parametrize("dataset", list(bench_speed.DATASETS))
def test_hand_written_side_trains_on_taskfits_split(dataset: str, tmp_path: Path) -> None:
    spec = bench_speed.write_spec(tmp_path, dataset, epochs=20, batch_size=32, seed=0)
    rows = bench_speed.check_same_split(spec, dataset, seed=0)
    assert rows == {"breast_cancer": 365, "digits": 1151, "diabetes": 283}[dataset]
