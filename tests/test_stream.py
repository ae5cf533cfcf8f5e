"""data.streaming: the chunked reader splits, scans and batches a CSV exactly as the in-memory
path would fit it, in bounded memory, and a streamed spec trains, saves and predicts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import count_streamed_rows, mixed_csv
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.overrides import parse_set
from taskfit.data import view as data_module
from taskfit.data.columns import CATEGORICAL, NUMERIC
from taskfit.feed import rowblocks, scan, stream
from taskfit.feed import splits as splits_module
from taskfit.feed.cells import Columns
from taskfit.feed.chunk import TRAIN, Chunk
from taskfit.feed.memory import encode_table
from taskfit.feed.scan import feature_stats
from taskfit.feed.splits import Splits
from taskfit.plan.checking import check_spec
from taskfit.training import feeding
from taskfit.training.fit import make_splits

runner = CliRunner()


def test_row_parts_are_stable_and_take_their_share() -> None:
    whole = stream.row_parts(0, 100_000, 7, 0.2, 0.25)
    # the same rows, read in chunks of any size, land in the same parts
    pieces = np.concatenate(
        [stream.row_parts(i, 1000, 7, 0.2, 0.25) for i in range(0, 100_000, 1000)]
    )
    np.testing.assert_array_equal(whole, pieces)
    shares = np.bincount(whole, minlength=3) / len(whole)
    # test 20%; validation 25% of the remaining 80% = 20%; train 60%
    assert shares == pytest.approx([0.6, 0.2, 0.2], abs=0.01)
    assert not np.array_equal(whole, stream.row_parts(0, 100_000, 8, 0.2, 0.25))  # the seed


def test_moments_merged_by_chunk_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(5, 3, (1000, 3))
    values[rng.random((1000, 3)) < 0.1] = np.nan
    moments = scan.Moments.empty(3)
    for block in np.array_split(values, 7):
        moments.add(block)
    np.testing.assert_allclose(moments.mean, np.nanmean(values, axis=0))
    np.testing.assert_allclose(moments.variance, np.nanvar(values, axis=0))
    filled = np.where(np.isnan(values), 1.5, values)
    with_fill = moments.with_constant(np.full(3, 1.5), np.isnan(values).sum(axis=0))
    np.testing.assert_allclose(with_fill.mean, filled.mean(axis=0))
    np.testing.assert_allclose(with_fill.variance, filled.var(axis=0))


@pytest.fixture
def streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """mixed_csv with a heavy-tailed column, read in many small chunks."""
    monkeypatch.setattr(stream, "BLOCK_BYTES", 2048)
    lines = mixed_csv(600).splitlines()
    rows = [lines[0] + ",visits"] + [
        f"{line},{5000 if i % 25 == 0 else i % 9}" for i, line in enumerate(lines[1:])
    ]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: binary\ndata: {source: data.csv, label: bought, streaming: true}\n"
        "training: {epochs: 25, batch_size: 16}\n"
    )
    return spec


def test_the_scan_fits_what_the_in_memory_path_fits_on_the_same_rows(streamed: Path) -> None:
    checked = check_spec(streamed)
    splits = make_splits(checked)
    scanned = splits.scanned.stats
    # the in-memory statistics of exactly the rows the hash put in training
    view, plan = checked.data, checked.plan
    rows = view.rows
    parts = stream.row_parts(0, view.table.n_rows, 0, 0.2, 0.2)
    train = [i for i in rows if parts[i] == TRAIN]
    numeric, categorical = view.of_kind(NUMERIC), view.of_kind(CATEGORICAL)
    columns = Columns(numeric, categorical, plan.heads)
    part = encode_table(view.table, columns).rows.take(np.array(train))
    gaps = frozenset(c.name for c in view.columns if c.kind == NUMERIC and c.missing)
    memory = feature_stats(columns, part, gaps)
    assert scanned.skewed == memory.skewed != ()
    assert scanned.indicate == memory.indicate != ()
    np.testing.assert_allclose(scanned.fill, memory.fill, rtol=1e-6)
    np.testing.assert_allclose(scanned.mean, memory.mean, rtol=1e-5)
    np.testing.assert_allclose(scanned.variance, memory.variance, rtol=1e-4)
    assert scanned.vocabularies == memory.vocabularies
    sizes = splits.sizes()
    assert sizes["train"] == len(train) and sum(sizes.values()) == len(rows)
    assert splits.scanned.without_label == view.table.n_rows - len(rows) == 1


def test_training_batches_hold_every_row_once_in_a_new_order_each_epoch(
    streamed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each epoch's order follows from its number (Keras's callback tells it), so a run resumed
    at epoch 2 shuffles epoch 2 as the uninterrupted run did."""
    monkeypatch.setattr(splits_module, "SHUFFLE_ROWS", 50)
    checked = check_spec(streamed)

    def epoch(splits: Splits, number: int) -> list[tuple[float, ...]]:
        (tell,) = feeding.fit_callbacks(splits)
        tell.on_epoch_begin(number)
        seen = []
        for batch in splits.batches(TRAIN, 16, shuffle=True):
            assert len(batch) <= 16
            seen += [
                (*np.nan_to_num(row, nan=-1.0).tolist(), float(t))
                for row, t in zip(batch.numeric, batch.target, strict=True)
            ]
        return seen

    running = make_splits(checked)
    first, second = epoch(running, 0), epoch(running, 1)
    assert len(first) == running.sizes()["train"]
    assert sorted(first) == sorted(second) and first != second
    resumed = make_splits(checked)  # a new process, starting at epoch 1
    assert epoch(resumed, 1) == second


def test_the_shuffle_buffer_stays_bounded(streamed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splits_module, "SHUFFLE_ROWS", 40)
    splits = make_splits(check_spec(streamed))
    largest = 0
    real_concat = splits_module.concat

    def watching(chunks: list[Chunk]) -> Chunk:
        nonlocal largest
        joined = real_concat(chunks)
        largest = max(largest, len(joined))
        return joined

    monkeypatch.setattr(splits_module, "concat", watching)
    list(splits.batches(TRAIN, 16, shuffle=True))
    biggest_chunk = max(len(c) for c in splits.chunks(TRAIN))
    assert 40 < largest <= 40 + 16 + biggest_chunk


@pytest.mark.plots
def test_a_streamed_spec_trains_saves_and_predicts(streamed: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", str(streamed), "--output", str(tmp_path / "runs"), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["metrics"]["accuracy"] > 0.8  # age and city decide the label
    assert "streaming data.csv: column types and labels from its first" in result.stderr
    run = Path(doc["run_dir"])
    facts = json.loads((run / "run.json").read_text())
    assert sum(facts["rows"].values()) == 599
    assert (run / "plots" / "roc_pr.png").is_file()
    predicted = runner.invoke(app, ["predict", str(run), str(streamed.parent / "data.csv")])
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.stdout.splitlines()) == 601


def test_a_class_beyond_the_checked_rows_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_module, "SAMPLE_ROWS", 50)
    rows = ["a,b,y"] + [f"{i % 7},{i % 3},{'abd'[i % 3]}" for i in range(80)] + ["1,2,c"]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: multiclass\ndata: {source: data.csv, label: y, streaming: true}\n")
    checked = runner.invoke(app, ["check", str(spec)])
    assert checked.exit_code == 0  # it sees the first 50
    assert "its first 50 rows (streamed: the rest is read when training)" in checked.stdout
    doc = json.loads(runner.invoke(app, ["check", str(spec), "--json"]).stdout)
    assert doc["rows"] == 50 and doc["streamed"] is True
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert (
        "error: column y: CSV line 82 of data.csv has 'c', not among the classes found in the "
        "first 50 rows (a, b, d); list every class in data.classes" in result.stderr
    )
    assert not (tmp_path / "runs").exists()  # the scan runs before the run folder is made


def test_a_streamed_spec_with_heads_and_one_hot_labels_reads_what_memory_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heads and one-hot label columns stream: every head's targets, encoded as in memory, for
    the rows the hash puts in each part, in blocks of 512 bytes."""
    monkeypatch.setattr(stream, "BLOCK_BYTES", 512)
    rows = ["a,b,city,red,green,blue,price"]
    for i in range(300):
        colour = i % 3
        onehot = ",".join("1" if k == colour else "0" for k in range(3))
        rows.append(f"{i % 7},{(i * 3) % 11},{'xyz'[i % 3]},{onehot},{i % 13 + 0.5}")
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    text = (
        "data: {source: data.csv, streaming: %s}\nheads:\n"
        "  colour: {task: multiclass, label: [red, green, blue]}\n"
        "  price: {task: regression, label: price}\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(text % "true")
    checked = check_spec(spec)
    streamed = make_splits(checked)
    train = streamed.part(TRAIN)
    assert set(train.y) == {"colour", "price"} and train.y["colour"].shape[1] == 3
    parts = stream.row_parts(0, 300, 0, 0.2, 0.2)
    memory = encode_table(checked.data.table, streamed.columns).rows.take(parts == TRAIN)
    np.testing.assert_array_equal(train.y["colour"], memory.y["colour"])
    np.testing.assert_array_equal(train.y["price"], memory.y["price"])
    assert streamed.stats.targets["price"][0] == pytest.approx(memory.y["price"].mean(), rel=1e-5)


def test_streaming_turns_itself_on_for_a_big_file_with_one_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskfit.spec.spec import parse_spec

    monkeypatch.setattr(data_module, "AUTO_BYTES", 100)
    csv = tmp_path / "data.csv"
    csv.write_text(mixed_csv(20))  # over 100 bytes: "big"

    def wanted(text: str) -> bool:
        return data_module.streaming_wanted(parse_spec(text, tmp_path).spec, csv)

    assert wanted("task: binary\ndata: {source: data.csv, label: bought}\n")
    assert not wanted("task: binary\ndata: {source: data.csv, label: bought, streaming: false}\n")
    heads = (
        "data: {source: data.csv}\nheads:\n  a: {task: binary, label: bought}\n"
        "  b: {task: regression, label: age}\n"
    )
    assert wanted(heads)  # a big file with heads streams too
    monkeypatch.setattr(data_module, "AUTO_BYTES", 10**9)
    assert not wanted("task: binary\ndata: {source: data.csv, label: bought}\n")


def test_spaced_header_names_and_cells_spanning_lines_stream_like_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Header names are stripped as check strips them; a quoted cell with a line break may
    straddle a chunk boundary (chunks of 512 bytes here)."""
    monkeypatch.setattr(stream, "BLOCK_BYTES", 512)
    rows = ["a , note, y"] + [
        f'{i % 7},"line one\nline {i % 3}",{int(i % 7 > 3)}' for i in range(120)
    ]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: binary\ndata: {source: data.csv, label: y, streaming: true}\ntraining: {epochs: 2}\n"
    )
    splits = make_splits(check_spec(spec))
    assert sum(splits.sizes().values()) == 120
    assert splits.scanned.stats.vocabularies["note"] == [f"line one\nline {k}" for k in range(3)]


cells = st.text(alphabet='ab,"\n\r 1', max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=40),
    size=st.integers(16, 64),  # rows here are at most 45 bytes: STRAY_BLOCKS blocks hold one
    ending=st.sampled_from(["\n", "\r\n"]),
)
def test_row_blocks_end_at_row_ends_whatever_the_cells_hold(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], size: int, ending: str
) -> None:
    """Cells with quotes, commas and line breaks, written by Python's csv writer: the blocks
    cover the file, none was handed to pyarrow's own reader, and each holds whole rows (csv
    reads the same rows from the blocks one by one as from the whole file)."""
    path = tmp_path_factory.mktemp("blocks") / "data.csv"
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator=ending).writerows([["a", "b", "c"], *rows])
    whole = path.read_bytes()
    blocks = list(rowblocks.row_blocks(path, size))
    assert all(block is not None for _, block in blocks)
    assert b"".join(block or b"" for _, block in blocks) == whole
    assert [offset for offset, _ in blocks] == list(
        np.cumsum([0] + [len(block or b"") for _, block in blocks[:-1]])
    )

    def read(text: bytes | memoryview) -> list[list[str]]:
        return list(csv.reader(io.StringIO(bytes(text).decode(), newline="")))

    assert [row for _, block in blocks for row in read(block or b"")] == read(whole)


def test_a_quote_inside_an_unquoted_cell_leaves_the_rest_to_pyarrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12" in an unquoted cell is a literal quote to CSV readers but unbalances the count of
    quote marks: after STRAY_BLOCKS blocks without a balanced break, pyarrow's own reader reads
    the rest, and every row comes through as written."""
    monkeypatch.setattr(stream, "BLOCK_BYTES", 256)
    lines = [f'{i},screen {i % 4}" wide,{i % 2}' if i == 30 else f"{i},plain {i % 4},{i % 2}"
             for i in range(400)]  # fmt: skip
    (tmp_path / "data.csv").write_text("n, size, y\n" + "\n".join(lines) + "\n")
    blocks = list(rowblocks.row_blocks(tmp_path / "data.csv", 256))
    assert blocks[-1][1] is None and len(blocks) > 1  # the fast path read the rows before it
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: binary\ndata: {source: data.csv, label: y, streaming: true}\n")
    checked = check_spec(spec)
    read = [block.rows for block in make_splits(checked).source.blocks()]
    assert sum(len(chunk) for chunk in read) == 400
    sizes = np.concatenate([chunk.categorical["size"][:, 0] for chunk in read])
    assert sizes[30] == 'screen 2" wide' and sizes[399] == "plain 3"


@pytest.mark.parametrize(
    ("column", "cell", "message"),
    [
        ("a", "abc", "column a: a row of data.csv after the first rows check reads has 'abc', "
         "not a number; fix the cell, or list a in data.categorical"),
        ("y", "abc", "column y: a row of data.csv has 'abc'; a regression label must be a number"),
        ("y", "inf", "column y: CSV line 62 of data.csv is infinite; a regression label must be "
         "a finite number"),
        ("a", "1e39", "column a: CSV line 62 of data.csv is infinite or beyond a 32-bit float "
         "(3.4e38); use an empty cell for a missing value"),
    ],
)  # fmt: skip
def test_a_bad_cell_after_the_checked_rows_names_its_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str, cell: str, message: str
) -> None:
    monkeypatch.setattr(data_module, "SAMPLE_ROWS", 40)
    rows = [f"{i % 7},{i % 5},{i * 0.5}" for i in range(60)]
    rows.append("1,2,3".replace("1", cell, 1) if column == "a" else f"1,2,{cell}")
    (tmp_path / "data.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: regression\ndata: {source: data.csv, label: y, streaming: true}\n")
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert f"error: {message}" in result.stderr, result.stderr


def test_a_streamed_error_names_the_file_line_past_blank_lines_and_quoted_breaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Line 1 the header, 60 one-line rows, one of them with a cell over three lines, two blank
    lines: the bad 61st row is on line 1 + 61 + 2 + 2 = 66, in a later block than the first."""
    monkeypatch.setattr(data_module, "SAMPLE_ROWS", 40)
    monkeypatch.setattr(stream, "BLOCK_BYTES", 256)
    rows = [f"{i % 7},{'x' if i % 2 else 'z'},{i * 0.5}" for i in range(60)]
    rows[10] = '3,"one\r\ntwo\r\nthree",5.0'
    rows[20:20] = [""]
    rows[40:40] = [""]
    rows.append("1e39,x,1.0")
    (tmp_path / "data.csv").write_bytes(("a,b,y\r\n" + "\r\n".join(rows) + "\r\n").encode())
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: regression\ndata: {source: data.csv, label: y, streaming: true}\n")
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "error: column a: CSV line 66 of data.csv is infinite" in result.stderr, result.stderr


def test_a_smoke_run_reads_only_the_start_of_a_streamed_file(
    streamed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskfit.training import fit as training

    monkeypatch.setattr(training, "SMOKE_ROWS", 20)
    read = count_streamed_rows(monkeypatch)
    splits = training.make_splits(check_spec(streamed), smoke=True)
    assert sum(read) < 599 / 2  # the scan stopped early (chunks of 2 KiB: about 40 rows)
    assert all(n <= 20 for n in splits.sizes().values())


def test_keras_tells_the_shuffle_each_epoch_before_reading_it(
    streamed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskfit.training.run import train

    seen: list[int] = []
    real = Splits.batches

    def recording(self: Splits, part: int, size: int, shuffle: bool):  # type: ignore[no-untyped-def]
        if shuffle:
            seen.append(self.epoch[0])
        yield from real(self, part, size, shuffle)

    monkeypatch.setattr(Splits, "batches", recording)
    train(
        streamed,
        parse_set(["training.epochs=3", "training.early_stopping=null"]),
        tmp_path,
        verbose=0,
    )
    assert seen == [0, 1, 2]
