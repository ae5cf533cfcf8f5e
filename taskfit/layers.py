"""taskfit's custom Keras layers. Import this module before `keras.saving.load_model` on a model
trained on data with empty numeric cells or heavy-tailed columns (`predict` and `evaluate` do)."""

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


@keras.saving.register_keras_serializable(package="taskfit")
class LogScale(keras.layers.Layer):
    """log1p on the given columns: heavy-tailed counts and amounts (0 .. 10^4 and up) become
    roughly bell-shaped, which a standardised MLP input needs and boosting never did."""

    def __init__(self, columns: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns = [int(i) for i in columns]

    def call(self, x: Any) -> Any:
        width = x.shape[-1]
        mask = keras.ops.convert_to_tensor([i in self.columns for i in range(width)])
        return keras.ops.where(mask, keras.ops.log1p(keras.ops.maximum(x, 0.0)), x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "columns": self.columns}
