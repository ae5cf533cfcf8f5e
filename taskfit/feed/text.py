"""A free-text column's encoding: Keras's TextVectorization, adapted on the training cells, as
TF-IDF weights of its most frequent words and word pairs. The one adapted layer encodes the
rows for training (outside the compiled step: string ops would stall it) and sits in the saved
model before the same network, so the two cannot disagree."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

# Words and word pairs kept (the most frequent in training); each is one input of the first
# hidden layer, so this bounds the columns a text adds
MAX_TOKENS = 2000
NGRAMS = 2


def fit_text(column: str, counts: Counter[str]) -> Any:
    """TextVectorization adapted on the training cells (cell -> rows), named for its column
    (Keras refuses only `/` in a name)."""
    import keras

    name = f"{column.replace('/', '_')}_tf_idf"
    layer = keras.layers.TextVectorization(
        max_tokens=MAX_TOKENS, ngrams=NGRAMS, output_mode="tf_idf", name=name
    )
    layer.adapt(np.array(list(counts.elements()) or [""], dtype=object))
    return layer


def encode_text(layer: Any, cells: np.ndarray) -> np.ndarray:
    """(rows, 1) strings -> (rows, tokens) float32 TF-IDF weights, as the saved model computes
    them."""
    import tensorflow as tf  # TextVectorization runs on TensorFlow whatever the backend

    return np.asarray(layer(tf.constant(cells.astype(str))), dtype=np.float32)
