"""taskfit's one custom Keras layer. Import this module before `keras.saving.load_model` on a
model trained on data with empty numeric cells (`taskfit.load_model` does it for you)."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="taskfit")
class FillMissing(keras.layers.Layer):
    """NaN -> the column's training median; then one 0/1 column per `indicate` index saying
    whether the value was missing, so the network can learn from the gap itself."""

    def __init__(self, fill: list[float], indicate: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fill = [float(v) for v in fill]
        self.indicate = [int(i) for i in indicate]

    def call(self, x: Any) -> Any:
        gaps = keras.ops.isnan(x)
        fill = keras.ops.convert_to_tensor(self.fill, dtype=x.dtype)
        filled = keras.ops.where(gaps, fill, x)
        if not self.indicate:
            return filled
        flags = keras.ops.cast(keras.ops.take(gaps, self.indicate, axis=1), x.dtype)
        return keras.ops.concatenate([filled, flags], axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], len(self.fill) + len(self.indicate))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill": self.fill, "indicate": self.indicate}
