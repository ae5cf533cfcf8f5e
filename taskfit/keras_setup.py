"""The one place TensorFlow and Keras are imported, quietly."""

from __future__ import annotations

import os
from types import ModuleType


def import_keras() -> ModuleType:
    # TensorFlow's C++ logging reads this once, at import: set it before the first import.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras
