"""`export`: each format, loaded with its own runtime, predicts what the Keras model predicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import mixed_csv, table_inputs

from taskfit.cli.overrides import parse_set
from taskfit.data.bundled import bundled_datasets
from taskfit.data.csvtable import read_csv
from taskfit.errors import DataError, TaskfitError
from taskfit.feed.chunk import Inputs
from taskfit.inference import export as export_module
from taskfit.inference.export import export, input_names
from taskfit.model.build import named_inputs
from taskfit.model.keras_setup import import_keras
from taskfit.runfolder.opened import Run, open_run
from taskfit.spec.keys import SINGLE_HEAD
from taskfit.training.run import train

FAST = parse_set(["training.epochs=3", "training.batch_size=16"])
MIXED_SPEC = (
    "task: binary\ndata: {source: data.csv, label: bought, categorical: [plan, Shop Name]}\n"
    "model: {members: 2, numeric_embedding: periodic}\n"  # the small-table network, smaller
)
PIECEWISE_SPEC = (
    "task: regression\ndata: {source: diabetes, label: progression}\n"
    "model: {members: 2, numeric_embedding: {name: piecewise, bins: 8, units: 4}}\n"
)
HEADS_SPEC = (
    "data: {source: wine}\n"
    "heads:\n"
    "  cultivar: {task: multiclass, label: cultivar}\n"
    # learned on a log scale: the exp at the end of the saved model exports too
    "  alcohol: {task: regression, label: alcohol, target_transform: log}\n"
)
ROWS = 6  # rows compared per export
Predict = Callable[[Path, dict[str, np.ndarray]], dict[str, np.ndarray]]


def shop_and_visits_csv(rows: int) -> str:
    """mixed_csv plus a 34-category column (above the one-hot limit: an embedding) named with a
    space and capitals, a heavy-tailed count (log-scaled in the model: Log1p) and a date column
    (looked up in its calendar)."""
    lines = mixed_csv(rows).splitlines()
    out = [f"{lines[0]},Shop Name,visits,sold on"]
    for i, line in enumerate(lines[1:]):
        day = f"{1 + i % 12}/{1 + i % 28}/{2020 + i % 3}"
        out.append(f"{line},shop {i % 34},{1000 if i % 15 == 0 else i % 4},{day}")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Members and the periodic embedding (small-table defaults: module fixtures are set up
    before conftest's function-scoped one): every format carries them."""
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "data.csv").write_text(shop_and_visits_csv(200))
    (folder / "spec.yaml").write_text(MIXED_SPEC)
    return train(folder / "spec.yaml", FAST, folder / "runs", verbose=0).run_dir


@pytest.fixture(scope="module")
def piecewise_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("piecewise")
    (folder / "spec.yaml").write_text(PIECEWISE_SPEC)
    return train(folder / "spec.yaml", FAST, folder / "runs", verbose=0).run_dir


@pytest.fixture(scope="module")
def heads_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("heads")
    (folder / "spec.yaml").write_text(HEADS_SPEC)
    return train(
        folder / "spec.yaml", parse_set(["training.epochs=1"]), folder / "runs", verbose=0
    ).run_dir


def some_rows(run: Run) -> Inputs:
    """The first rows of the run's CSV, with every category unseen in row 0 and every number
    missing in row 1."""
    table = read_csv(training_csv(run))
    raw = {c: v[:ROWS] for c, v in table_inputs(table, run.numeric, run.categorical).items()}
    for column in run.categorical:
        raw[column] = raw[column].astype(object)
        raw[column][0, 0] = "never seen in training"
        raw[column] = raw[column].astype(str)
    for column in run.numeric:
        raw[column][1, 0] = np.nan
    return raw


def training_csv(run: Run) -> Path:
    """spec.resolved.yaml names a bundled dataset or the CSV's absolute path."""
    source = str(run.spec.data.source)
    bundled = bundled_datasets().get(source)
    return bundled.path if bundled else Path(source)


def keras_predictions(run: Run, raw: Inputs) -> dict[str, np.ndarray]:
    model = import_keras().saving.load_model(run.folder / "model.keras")
    output = model.predict(named_inputs(raw), verbose=0)
    if isinstance(output, dict):
        return {head: np.asarray(v) for head, v in output.items()}
    return {SINGLE_HEAD: np.asarray(output)}


def by_input_name(raw: Inputs) -> dict[str, np.ndarray]:
    names = input_names(list(raw))
    return {names[column]: values for column, values in raw.items()}


def run_savedmodel(path: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    outputs = serve(**{name: tf.constant(v) for name, v in feed.items()})
    return {head: v.numpy() for head, v in outputs.items()}


def run_tflite(
    path: Path, feed: dict[str, np.ndarray], xnnpack: bool = False
) -> dict[str, np.ndarray]:
    """LiteRT's own interpreter (ai_edge_litert) when installed, else the one TensorFlow still
    ships (deprecated since TF 2.20). TFLite's reference kernels unless `xnnpack`: see
    test_tflite_with_xnnpack_fills_a_gap_in_a_log_scaled_column."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    kernels = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=kernels)
    return dict(interpreter.get_signature_runner("serving_default")(**feed))


def run_onnx(path: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    strings_as_objects = {
        n: v.astype(object) if v.dtype.kind == "U" else v for n, v in feed.items()
    }
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, strings_as_objects), strict=True))


RUNTIMES: dict[str, Predict] = {
    "savedmodel": run_savedmodel,
    "tflite": run_tflite,
    "onnx": run_onnx,
}


def skip_without_converter(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        pytest.importorskip("onnxruntime")


def assert_same_predictions(run_dir: Path, fmt: str, destination: Path) -> None:
    run = open_run(run_dir)
    raw = some_rows(run)
    expected = keras_predictions(run, raw)
    got = RUNTIMES[fmt](destination, by_input_name(raw))
    assert set(got) == set(expected)
    for head, values in expected.items():
        assert np.isfinite(values).all()  # the NaN and the unseen category were handled
        np.testing.assert_allclose(got[head], values, atol=1e-5, rtol=1e-5, err_msg=head)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_numbers_and_categories_export_with_the_same_predictions(mixed_run: Path, fmt: str) -> None:
    """One-hot and embedded categories, a date, a log-scaled and a gappy numeric column, column
    names with spaces and capitals; an unseen category, a cell that is no date and a NaN among
    the rows."""
    skip_without_converter(fmt)
    model = import_keras().saving.load_model(mixed_run / "model.keras")
    body = model.get_layer("preprocess_and_body")
    layers = [layer.name for layer in body.layers]
    assert "Shop_Name_embedding" in layers  # many values: an embedding in the fitted part
    # few values: one-hot before it, into one matrix with the other few-valued columns
    assert {"city_one_hot", "one_hot_block"} <= {layer.name for layer in model.layers}
    assert "sold_on_calendar" in layers  # and the dates
    assert {"members_mean", "periodic", "body"} <= set(layers)  # the small-table additions
    destination = export(mixed_run, fmt)
    assert destination.parent == mixed_run / "export"
    assert_same_predictions(mixed_run, fmt, destination)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_the_piecewise_linear_embedding_exports_with_the_same_predictions(
    piecewise_run: Path, fmt: str
) -> None:
    """Its bins are constants in the graph and its clips plain operations."""
    skip_without_converter(fmt)
    model = import_keras().saving.load_model(piecewise_run / "model.keras")
    layers = [layer.name for layer in model.get_layer("preprocess_and_body").layers]
    assert {"piecewise_linear", "piecewise", "members_mean"} <= set(layers)
    assert_same_predictions(piecewise_run, fmt, export(piecewise_run, fmt))


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_heads_export_with_one_output_per_head(heads_run: Path, fmt: str, tmp_path: Path) -> None:
    skip_without_converter(fmt)
    name = "exported" if fmt == "savedmodel" else f"exported.{fmt}"
    destination = export(heads_run, fmt, tmp_path / "sub" / name)
    assert destination == tmp_path / "sub" / name
    assert_same_predictions(heads_run, fmt, destination)
    assert sorted(p.name for p in destination.parent.iterdir()) == [name]  # no scratch left


@pytest.fixture(scope="module", params=["soft", "mmoe"])
def shared_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Heads under soft sharing (a tower per head) or a mixture of experts (packed experts,
    a softmax gate per head, a weighted sum over the expert axis)."""
    folder = tmp_path_factory.mktemp(request.param)
    (folder / "spec.yaml").write_text(HEADS_SPEC)
    sharing = parse_set([f"model.sharing={request.param}", "training.epochs=1"])
    return train(folder / "spec.yaml", sharing, folder / "runs", verbose=0).run_dir


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_soft_sharing_and_experts_export(shared_run: Path, fmt: str, tmp_path: Path) -> None:
    skip_without_converter(fmt)
    name = "exported" if fmt == "savedmodel" else f"exported.{fmt}"
    assert_same_predictions(shared_run, fmt, export(shared_run, fmt, tmp_path / name))


def test_exporting_again_replaces_the_savedmodel_when_asked(
    heads_run: Path, tmp_path: Path
) -> None:
    """Only with --force, and only a folder that holds a SavedModel and nothing else: a file
    the user put into it is theirs, and replacing the folder would delete it."""
    destination = tmp_path / "model"
    export(heads_run, "savedmodel", destination)
    first = (destination / "saved_model.pb").stat().st_ino
    with pytest.raises(TaskfitError, match="exists; give --force to replace it"):
        export(heads_run, "savedmodel", destination)
    assert export(heads_run, "savedmodel", destination, force=True) == destination
    assert (destination / "saved_model.pb").stat().st_ino != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    for added in (destination / "NOTES.md", destination / "assets" / "mine.txt"):
        added.write_text("the user's")
        with pytest.raises(TaskfitError, match="holds other files, which exporting would"):
            export(heads_run, "savedmodel", destination, force=True)
        assert added.read_text() == "the user's"
        added.unlink()


def test_an_op_onnx_cannot_take_is_refused_and_nothing_is_written(
    mixed_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without taskfit's Log1p rule tf2onnx leaves the op in the graph (onnxruntime then
    refuses the file): export must say so instead of writing it."""
    skip_without_converter("onnx")
    monkeypatch.setattr(export_module, "ONNX_RULES", {})
    with pytest.raises(TaskfitError, match=r"cannot convert the TensorFlow operation\(s\) Log1p"):
        export(mixed_run, "onnx", tmp_path / "out" / "model.onnx")
    assert not (tmp_path / "out").exists()


def test_tflite_with_xnnpack_fills_a_gap_in_a_log_scaled_column(mixed_run: Path) -> None:
    """LiteRT's default CPU path (XNNPACK), on the row whose log-scaled `visits` is NaN.
    ai-edge-litert 2.3.0's XNNPACK computes log(NaN) as 88.7, so model.log_scale keeps NaN out
    of log1p (this failed, off by 0.5, before it did)."""
    pytest.importorskip("ai_edge_litert")
    run = open_run(mixed_run)
    raw = some_rows(run)
    destination = export(mixed_run, "tflite")
    got = run_tflite(destination, by_input_name(raw), xnnpack=True)[SINGLE_HEAD]
    np.testing.assert_allclose(got, keras_predictions(run, raw)[SINGLE_HEAD], atol=1e-5)


def test_input_names_are_safe_and_distinct() -> None:
    columns = ["Unit Price (EUR)", "size/kg", "9 lives", "a b", "a_b", "__"]
    assert input_names(columns) == {
        "Unit Price (EUR)": "unit_price_eur",
        "size/kg": "size_kg",
        "9 lives": "x_9_lives",
        "a b": "a_b",
        "a_b": "a_b_2",
        "__": "column",
    }


def test_usage_errors_say_what_to_do(
    heads_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: Any, error: type[TaskfitError] = TaskfitError) -> str:
        with pytest.raises(error) as caught:
            export(*args)
        return str(caught.value)

    assert "use one of savedmodel, tflite, onnx" in refused(heads_run, "pb")
    assert "not a run folder" in refused(tmp_path, "savedmodel", error=DataError)
    assert "give a path ending in .tflite" in refused(heads_run, "tflite", tmp_path / "m.bin")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    assert "holds other files, which exporting would delete" in refused(
        heads_run, "savedmodel", tmp_path / "notes", True
    )
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    (tmp_path / "notes" / "saved_model.pb").write_text("not a SavedModel")  # no longer one
    assert "holds other files, which exporting would delete" in refused(
        heads_run, "savedmodel", tmp_path / "notes", True
    )
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert "is a link; give a new or empty folder" in refused(
        heads_run, "savedmodel", tmp_path / "link", True
    )
    (tmp_path / "old.tflite").write_text("the user's")
    assert "exists; give --force" in refused(heads_run, "tflite", tmp_path / "old.tflite")
    assert "is in the run folder" in refused(heads_run, "tflite", heads_run / "model.tflite")
    monkeypatch.setattr(export_module, "ONNX_PACKAGES", ("no_such_converter",))
    message = refused(heads_run, "onnx")
    assert "needs no_such_converter, which is not installed" in message
    assert 'pip install "taskfit[onnx]"' in message


def test_the_export_command_writes_the_file_and_names_the_renamed_inputs(mixed_run: Path) -> None:
    from typer.testing import CliRunner

    from taskfit.cli.app import app

    result = CliRunner().invoke(app, ["export", str(mixed_run), "--format", "tflite"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"exported tflite: {mixed_run / 'export' / 'model.tflite'}\n"
    assert "note: input names: Shop Name -> shop_name" in result.stderr
    assert (mixed_run / "export" / "model.tflite").stat().st_size > 0
    wrong = CliRunner().invoke(app, ["export", str(mixed_run), "--format", "pb"])
    assert wrong.exit_code == 2 and "'pb' is not one of" in wrong.stderr
