"""`export`: a run folder's model as a TensorFlow SavedModel, a TFLite file or an ONNX file.

Every format takes what the saved Keras model takes: one input per raw feature column, shape
(rows, 1), float32 for a numeric column (NaN for a missing value) and string for a categorical
one ("" for a missing value; an unseen category goes to the out-of-vocabulary slot). Filling gaps,
standardising and looking up categories happen inside the export, as in `taskfit predict`.

Input names are the column names made safe for every runtime (`input_names`): lower case, each
run of characters other than letters and digits becomes `_` ("Unit Price (EUR)" -> unit_price_eur).
Outputs are named by head: `output` for a single task, the head names for a model with heads.
Classifiers output probabilities (one column for binary: the positive class), regressions the
value in the label's units.

Where each goes unless `output` says otherwise (the run folder's own export/ folder):
    savedmodel  <run>/export/savedmodel/  (serving signature "serving_default")
    tflite      <run>/export/model.tflite (built-in ops only: no Flex delegate needed)
    onnx        <run>/export/model.onnx   (needs `pip install "taskfit[onnx]"`: tf2onnx, onnx)

An export is written in a scratch folder beside its destination and moved there in one rename,
so a failure leaves nothing half-written; exporting again replaces the previous export.

ai-edge-litert 2.3.0's XNNPACK kernels (its default on CPU) compute log(NaN) as 88.7: models
trained before log_scale kept gaps out of log1p (taskfit 0.1.0 runs from before 2026-11-25) fill
no gap in a log-scaled column there; retrain them, or run LiteRT's reference kernels.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taskfit.errors import TaskfitError
from taskfit.inference.predict import load_run_model
from taskfit.model.keras_setup import import_keras
from taskfit.plan.outputs import by_head
from taskfit.plan.plan import Head
from taskfit.runfolder.files import check_output, make_output_folder
from taskfit.runfolder.layout import RunFolder
from taskfit.runfolder.opened import Run, open_run

FORMATS = ("savedmodel", "tflite", "onnx")
DEFAULT_NAMES = {"savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}
SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx"}  # the file formats; a SavedModel is a folder
ONNX_OPSET = 17  # onnxruntime >= 1.13 runs it; tf2onnx's own default (15) lags behind
ONNX_PACKAGES = ("tf2onnx", "onnx")
SERVING = "serving_default"

Heads = tuple[Head, ...]


def export(
    run_dir: str | Path, fmt: str, output: str | Path | None = None, force: bool = False
) -> Path:
    """Export the run's model as `fmt` to `output` (default: see the module docstring) and return
    where it went. Checks the format, the converter and the destination before loading TF.
    `force`: an `output` that exists (an earlier export) may be replaced."""
    write = _writer(fmt)
    run = open_run(run_dir)
    destination = _destination(run, fmt, output, force)
    model = load_run_model(run)
    try:
        with _atomically(destination) as (staged, scratch):
            write(model, run.plan.heads, staged, scratch)
    except OSError as exc:
        raise TaskfitError(f"--output {destination}: cannot be written ({exc.strerror})") from None
    except Exception as exc:  # TensorFlow's own for a full disk (ResourceExhaustedError)
        if type(exc).__name__ not in TF_WRITE_ERRORS:
            raise
        raise TaskfitError(
            f"--output {destination}: cannot be written ({_first_line(exc)}); nothing was replaced"
        ) from None
    return destination


# what TensorFlow raises when a file of a SavedModel cannot be written (tf.errors)
TF_WRITE_ERRORS = {"ResourceExhaustedError", "PermissionDeniedError", "UnavailableError"}


def input_names(columns: list[str]) -> dict[str, str]:
    """Column -> its input name in the export. SavedModel signatures take only names that start
    with a letter and hold letters, digits and `_`, and some runtimes lower-case them."""
    names: dict[str, str] = {}
    for column in columns:
        base = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_") or "column"
        base = base if base[0].isalpha() else f"x_{base}"
        name, n = base, 2
        while name in names.values():  # "a b" and "a_b" must stay apart
            name, n = f"{base}_{n}", n + 1
        names[column] = name
    return names


# ---- choosing the writer and the destination (no TensorFlow yet) ----


def _writer(fmt: str) -> Callable[[Any, Heads, Path, Path], None]:
    writers = {"savedmodel": _write_savedmodel, "tflite": _write_tflite, "onnx": _write_onnx}
    if fmt not in writers:
        raise TaskfitError(
            f"--format {fmt!r}: not an export format; use one of {', '.join(FORMATS)}"
        )
    if fmt == "onnx":
        _require_onnx_packages()
    return writers[fmt]


def _require_onnx_packages() -> None:
    missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        are = "is" if len(missing) == 1 else "are"
        raise TaskfitError(
            f"--format onnx needs {' and '.join(missing)}, which {are} not installed; "
            'install the ONNX extra: pip install "taskfit[onnx]"'
        )


def _destination(run: Run, fmt: str, output: str | Path | None, force: bool) -> Path:
    """Where the export goes: the run's export/ folder (an earlier export there is replaced),
    or `output`, which replaces an earlier file or SavedModel only with `force` and never
    anything else (a folder of other files, a run folder's own files)."""
    own = RunFolder(run.folder).exports
    if output is None:
        return own / DEFAULT_NAMES[fmt]
    path = Path(output)
    suffix = SUFFIXES.get(fmt)
    if suffix:
        if path.suffix != suffix:
            raise TaskfitError(
                f"--output {path}: a {fmt} export is one {suffix} file; give a path ending in "
                f"{suffix}"
            )
        check_output(path, "--output", force, own=own)
        return path
    if path.is_symlink():  # a link is the user's, wherever it leads
        raise TaskfitError(f"--output {path}: is a link; give a new or empty folder")
    if path.exists() and not path.is_dir():
        raise TaskfitError(f"--output {path}: is a file; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        if not is_saved_model(path):
            raise TaskfitError(
                f"--output {path}: holds other files, which exporting would delete; give a "
                "new or empty folder"
            )
        check_output(path / "saved_model.pb", "--output", force, own=own)
    return path


# What TensorFlow writes in a SavedModel folder (tf.saved_model.save): a folder holding anything
# else is the user's, and an export replacing it would delete what they put there.
SAVED_MODEL_FILES = {"saved_model.pb", "fingerprint.pb"}
VARIABLES_FILE = re.compile(r"variables\.(index|data-\d{5}-of-\d{5})")


def is_saved_model(folder: Path) -> bool:
    """Whether `folder` holds a SavedModel and nothing else: only the files, links excluded,
    that tf.saved_model.save writes (an empty assets/: taskfit's models keep no asset files)."""

    def entries(where: Path) -> list[Path]:
        return list(where.iterdir()) if where.is_dir() and not where.is_symlink() else []

    top = {p.name: p for p in entries(folder)}
    if "saved_model.pb" not in top or any(p.is_symlink() for p in top.values()):
        return False
    for name, entry in top.items():
        if name == "variables":
            ok = entry.is_dir() and all(
                VARIABLES_FILE.fullmatch(p.name) and _plain(p) for p in entries(entry)
            )
        elif name == "assets":
            ok = entry.is_dir() and not entries(entry)
        else:
            ok = name in SAVED_MODEL_FILES and _plain(entry)
        if not ok:
            return False
    return True


def _plain(path: Path) -> bool:
    """A regular file itself, not a link to one."""
    return path.is_file() and not path.is_symlink()


# ---- writing atomically ----


@contextmanager
def _atomically(destination: Path) -> Iterator[tuple[Path, Path]]:
    """Yields (where to write the export, a scratch folder for anything else); both lie in one
    scratch folder beside `destination`, so the final move is a rename on the same disk."""
    created = make_output_folder(destination.parent)
    scratch = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    )
    try:
        staged = scratch / destination.name
        yield staged, scratch
        _replace(staged, destination, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if created:  # the export/ folder we made for a failed export: leave no trace
            shutil.rmtree(destination.parent, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)


def _replace(staged: Path, destination: Path, scratch: Path) -> None:
    """os.replace cannot replace a non-empty folder: an earlier SavedModel trades places with
    the new one in one step where the system can (Linux), else moves into the scratch folder
    first (and goes with it), which leaves a moment with neither."""
    if destination.is_dir():
        if _exchange(staged, destination):
            return  # `staged` holds the earlier export now, and goes with the scratch folder
        os.replace(destination, scratch / "previous")
    os.replace(staged, destination)


def _exchange(one: Path, other: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 with RENAME_EXCHANGE, glibc 2.28+); False
    where the system has no such call or refuses it."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE from <fcntl.h> and <stdio.h>
    done = renameat2(at_cwd, os.fsencode(one), at_cwd, os.fsencode(other), exchange)
    return bool(done == 0)


# ---- the formats ----


def _write_savedmodel(model: Any, heads: Heads, path: Path, scratch: Path) -> None:
    """A serving signature with safe input names and outputs named by head. Keras's own
    model.export names the inputs after the columns, which fails on a column like "unit price"."""
    import tensorflow as tf

    keras = import_keras()
    columns = dict(model.input)  # column -> its Keras input
    names = input_names(list(columns))
    signature = {
        names[c]: tf.TensorSpec((None, 1), tensor.dtype, name=names[c])
        for c, tensor in columns.items()
    }

    def serve(inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = model({c: inputs[names[c]] for c in columns}, training=False)
        return by_head(heads, outputs)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING, serve, input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def _write_tflite(model: Any, heads: Heads, path: Path, scratch: Path) -> None:
    """Built-in ops only: StringLookup's hash table has TFLite kernels of its own, so the file
    runs on plain LiteRT (ai_edge_litert) without the Flex (SELECT_TF_OPS) delegate."""
    import tensorflow as tf
    from tensorflow.lite.python.convert import ConverterError  # tf.lite does not export it

    # measured: StringLower is a Flex op and StringNGrams not even that, and neither LiteRT
    # nor TensorFlow 2.20's tf.lite.Interpreter links the Flex delegate
    _refuse_text(model, "tflite", "TFLite's built-in")
    savedmodel = scratch / "savedmodel"
    _write_savedmodel(model, heads, savedmodel, scratch)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel), [SERVING])
    try:
        path.write_bytes(converter.convert())
    except ConverterError as exc:  # an op TFLite lacks: name it, do not dump a trace
        raise TaskfitError(
            f"--format tflite: TensorFlow's TFLite converter cannot convert this model: "
            f"{_first_line(exc)}. Export as savedmodel instead"
        ) from None


def _write_onnx(model: Any, heads: Heads, path: Path, scratch: Path) -> None:
    """tf2onnx from the SavedModel: unlike model.export(format="onnx") (tf2onnx.from_function),
    its SavedModel route carries StringLookup's vocabulary over and freezes every constant."""
    import onnx

    # measured: tf2onnx 1.17 leaves StringSplitV2, StringNGrams and RaggedBincount as they are
    _refuse_text(model, "onnx", "ONNX's")
    savedmodel = scratch / "savedmodel"
    _write_savedmodel(model, heads, savedmodel, scratch)
    proto = _convert_to_onnx(savedmodel)
    unknown = {n.op_type for n in proto.graph.node if not onnx.defs.has(n.op_type, n.domain)}
    unsupported = sorted(unknown)  # tf2onnx leaves an op it cannot map as it was, and goes on
    if unsupported:
        raise TaskfitError(
            f"--format onnx: tf2onnx {_version('tf2onnx')} cannot convert the TensorFlow "
            f"operation(s) {', '.join(unsupported)} that this model uses. Export as savedmodel "
            "or tflite instead"
        )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise TaskfitError(
            f"--format onnx: tf2onnx {_version('tf2onnx')} wrote a model ONNX rejects: "
            f"{_first_line(exc)}. Export as savedmodel or tflite instead"
        ) from None
    onnx.save(proto, str(path))


def _convert_to_onnx(savedmodel: Path) -> Any:
    """What `python -m tf2onnx.convert --saved-model` does, plus a Log1p rule (tf2onnx 1.17 has
    none; taskfit's log-scaled columns use it)."""
    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader, tfonnx

    with _quiet("tf2onnx"):
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(savedmodel),
            None,
            None,
            tag="serve",
            signatures=[SERVING],
            return_initialized_tables=True,
            return_tensors_to_rename=True,
        )
        with tf.Graph().as_default() as graph:
            tf.import_graph_def(graph_def, name="")
            converted = tfonnx.process_tf_graph(
                graph,
                opset=ONNX_OPSET,
                input_names=inputs,
                output_names=outputs,
                custom_op_handlers={op: (rule, []) for op, rule in ONNX_RULES.items()},
                initialized_tables=tables,
                tensors_to_rename=renames,
            )
            return optimizer.optimize_graph(converted).make_model("taskfit export")


def _log1p_as_log(ctx: Any, node: Any, name: str, args: list[Any]) -> Any:
    """log1p(x) -> log(x + 1). taskfit applies it to x >= 0 only, where the two differ by
    float32 rounding (about 1e-7)."""
    import numpy as np
    from tf2onnx import utils

    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=np.float32))
    plus_one = ctx.make_node("Add", [node.input[0], one.output[0]])
    ctx.replace_inputs(node, [plus_one.output[0]])
    node.type = "Log"
    return node


ONNX_RULES = {"Log1p": _log1p_as_log}  # TensorFlow ops tf2onnx lacks -> how to write them in ONNX


# ---- small helpers ----


def _refuse_text(model: Any, fmt: str, operations: str) -> None:
    """A model with a text column splits strings into words, which `operations` cannot."""
    keras = import_keras()
    texts = [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)
    ]
    if texts:
        raise TaskfitError(
            f"--format {fmt}: this model splits text into words inside ({', '.join(texts)}), "
            f"which {operations} operations cannot do; export as savedmodel instead"
        )


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """tf2onnx logs every step at INFO and its failures at ERROR: we report those ourselves."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _first_line(exc: Exception) -> str:
    return next(
        (line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
