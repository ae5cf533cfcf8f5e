"""What keeps a training run honest when it goes wrong: a loss that stops being a number, and
Ctrl-C. Both stop Keras's fit loop at a batch boundary (`model.stop_training`), so the run can
still keep its best weights and say what happened."""

from __future__ import annotations

import math
import signal
from types import FrameType
from typing import Any

import keras


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops at the first batch whose loss is NaN or infinite, remembering where (1-based)."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.found: tuple[int, int, float] | None = None  # (epoch, batch, loss)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(keras.ops.convert_to_numpy(loss))
        if not math.isfinite(value):
            self.found = (self.epoch, batch + 1, value)
            self.model.stop_training = True


class StopOnInterrupt(keras.callbacks.Callback):
    """The first Ctrl-C (SIGINT) asks fit to stop after the current batch; a second one
    interrupts at once (Python's own KeyboardInterrupt). Installed for the length of fit."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = False
        self._previous: Any = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C as it is
            self._previous = None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.model.stop_training = True
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
