"""The one place taskfit imports Keras from (taskfit/__init__.py quiets TensorFlow).

taskfit runs Keras on TensorFlow: the saved model looks its category columns up with
StringLookup on TensorFlow string tensors, and exports through TensorFlow. With KERAS_BACKEND=jax
(Keras 3.15.1) `predict` and `evaluate` stopped with a traceback ("string arrays can only be made
from NumPy arrays") and `train` drew no plots, so the command line sets TensorFlow whatever the
shell says (cli/app.py) and a Python caller on another backend gets a TaskfitError. Only the
processes of `train --workers`, which never build the saved model, ask for JAX."""

from __future__ import annotations

import contextlib
import importlib.machinery
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from taskfit.config.readable import check_regular
from taskfit.errors import DataError, TaskfitError


def check_backend(backend: str = "tensorflow") -> None:
    """A TaskfitError if Keras runs, or would run, on another backend than `backend` (Keras
    takes its backend once a process, when first imported): cheap, before anything is written."""
    keras = sys.modules.get("keras")
    loaded = keras.backend.backend() if keras else os.environ.get("KERAS_BACKEND", backend)
    if loaded != backend:
        raise TaskfitError(
            f"Keras runs on the {loaded} backend in this process (KERAS_BACKEND), and taskfit "
            f"runs it on {backend}: its saved models' string lookups and exports need it; set "
            f"KERAS_BACKEND={backend} (or leave it unset) before Python starts"
        )


def import_keras(backend: str = "tensorflow") -> ModuleType:
    """Keras, on `backend`."""
    os.environ.setdefault("KERAS_BACKEND", backend)
    check_backend(backend)
    import keras

    # A column a/b's input is named a_b (Keras allows no / in a name) and keyed a/b; Keras
    # warns of the difference each time it builds or loads such a model, and matches by key.
    warnings.filterwarnings(
        "ignore", message="When providing `inputs` as a dict, all keys", category=UserWarning
    )
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3":  # quiet, as taskfit/__init__.py asks
        # TensorFlow's Python logger: "5 out of the last 7 calls ... triggered tf.function
        # retracing" reached stderr by tune's third trial (each trial compiles a new model)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras


def lean_first_imports() -> None:
    """What the command line's process (cli/app.py) wants of its first TensorFlow and Keras
    imports, whichever module makes them (an import hook: importlib's documented extension
    point):

    - TensorFlow 2.21's native libraries log to file descriptor 2 as they load, before they
      read TF_CPP_MIN_LOG_LEVEL: "All log messages before absl::InitializeLog() ..." and the
      oneDNN notice, twice, on the stderr of every command that loads a model. TensorFlow is
      imported with descriptor 2 on /dev/null, unless the user asked for its logs
      (TF_CPP_MIN_LOG_LEVEL below 3). A failed import still raises, and is shown after.
    - Keras imports scikit-learn for its scikit-learn wrappers and matplotlib.pyplot for its
      image galleries, each only if installed (a try around the import), and taskfit uses
      neither: about 1 s of `import keras` (3.2-4.0 s against 4.4-4.8 s without them, here).
      They are kept out while Keras is imported, and importable again after."""
    pending: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {}
    if "tensorflow" not in sys.modules and os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3":
        pending["tensorflow"] = _stderr_quieted
    if "keras" not in sys.modules:
        pending["keras"] = _unused_extras_kept_out
    if pending:
        sys.meta_path.insert(0, _FirstImports(pending))


class _FirstImports:
    """Runs the first import of each package of `pending` inside its context (a meta path
    finder is any object with find_spec; importlib.abc would cost --help 4 ms)."""

    def __init__(self, pending: dict[str, Callable[[], contextlib.AbstractContextManager[None]]]):
        self.pending = pending

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.pending:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        context = self.pending.pop(name)
        if not self.pending:  # safe here: a spec returned ends the import system's search
            sys.meta_path.remove(self)
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            with context():
                execute(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


@contextlib.contextmanager
def _stderr_quieted() -> Iterator[None]:
    sys.stderr.flush()
    kept = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(kept, 2)
        os.close(kept)


UNUSED_BY_TASKFIT = ("sklearn", "matplotlib.pyplot")  # Keras imports them if it can


@contextlib.contextmanager
def _unused_extras_kept_out() -> Iterator[None]:
    """A None in sys.modules makes `import sklearn` raise ImportError (Python's import docs)."""
    blocked = [name for name in UNUSED_BY_TASKFIT if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def load_saved_model(path: Path) -> Any:
    """A run's model.keras, loaded with Keras's safe mode on. A file that is missing, is no
    Keras file, or holds a layer that would run code (a Lambda, which taskfit never writes) is
    a DataError naming it; safe mode stays on."""
    if not path.exists():
        raise DataError(
            f"{path}: is missing: this run folder holds no saved model (it stopped before "
            "saving one); train it again, or --resume it"
        )
    check_regular(path, str(path), DataError, None, "a model")
    import zipfile

    if not zipfile.is_zipfile(path):  # what Keras says of one is "File not found"
        raise DataError(
            f"{path}: is not a Keras model taskfit can load (not the zip archive a .keras file "
            "is); it is damaged or another file. Train the run again"
        )
    keras = import_keras()
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # Keras raises ValueError, and others from inside the archive
        said = str(exc).split(". ")[0]
        if "Lambda" in said or "safe_mode" in str(exc):
            raise DataError(
                f"{path}: holds a Lambda layer, which taskfit never writes; Keras's safe mode "
                "refused to run its code. Use a model.keras that taskfit train saved"
            ) from None
        raise DataError(
            f"{path}: is not a Keras model taskfit can load ({said}); it is damaged or "
            "another file. Train the run again"
        ) from None
