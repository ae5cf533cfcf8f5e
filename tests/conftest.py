from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"  # as the command line sets it (cli/app.py main)

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--with-workers",
        action="store_true",
        help="also run the tests marked `workers` (training on several processes)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The six tests that train on several JAX processes took 15 of the 37 minutes the two test
    workers spent in one default run (2026-12-02): they run with --with-workers, as CI runs
    them, and are skipped otherwise (a skip, not a `-m` expression, which a user's own `-m`
    would replace)."""
    if config.getoption("--with-workers"):
        return
    skip = pytest.mark.skip(reason="trains on several processes: pytest --with-workers")
    for item in items:
        if item.get_closest_marker("workers") is not None:
            item.add_marker(skip)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file (a spec or a CSV) into the test's folder and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(autouse=True, scope="session")
def deterministic_ops() -> None:
    """In-process runs are compared with each other (resumed against whole, one process against
    two): the test session asks TensorFlow for deterministic ops, as the CLI does for itself."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


@pytest.fixture(autouse=True)
def draw_plots_only_where_asked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drawing a run's PNGs takes about a second: in-process runs skip it unless the test is
    marked `plots` (those check the plots). Runs in a subprocess always draw."""
    if request.node.get_closest_marker("plots") is None:
        import taskfit.training.run

        monkeypatch.setattr(taskfit.training.run, "write_run_plots", lambda *args: [])


@pytest.fixture(autouse=True)
def small_table_additions_only_where_asked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small-table defaults (the layers, the members, the periodic embedding) triple a run's
    training time: in-process runs go without them unless the test is marked `additions`
    (tests/test_small_tables.py, the quality floors), as a spec with `model.members: 1,
    model.numeric_embedding: none, training.refit: false` would. Runs in a subprocess, and
    module-scoped fixtures (set up before this one), keep the real defaults."""
    if request.node.get_closest_marker("additions") is None:
        import dataclasses

        import taskfit.plan.make
        from taskfit.recipe.table import load_table

        table = load_table()
        small = dataclasses.replace(table.small_tables, up_to_rows=0)
        off = dataclasses.replace(table, small_tables=small)
        monkeypatch.setattr(taskfit.plan.make, "load_table", lambda: off)
