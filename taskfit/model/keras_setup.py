"""The one place the training code imports Keras from (taskfit/__init__.py quiets TensorFlow)."""

from __future__ import annotations

import os
from types import ModuleType


def import_keras() -> ModuleType:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras
