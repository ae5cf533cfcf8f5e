"""What keeps a training run honest when it goes wrong: a loss that stops being a number, and
Ctrl-C or SIGTERM. Both stop Keras's fit loop at a batch boundary (`model.stop_training`), so the
run can still keep its best weights and say what happened."""

from __future__ import annotations

import math
import signal
from types import FrameType
from typing import Any

import keras


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops at the first batch whose loss is NaN or infinite, remembering where (1-based), or
    at an epoch's end whose training or validation loss is (batch 0): a last step can leave
    the weights NaN after every batch's loss was a number (a schedule raising the rate to
    1e30 ended "completed" with a NaN model)."""

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
        self._check(loss, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name in ("loss", "val_loss"):
            if self.found is None and (logs or {}).get(name) is not None:
                self._check((logs or {})[name], 0)

    def _check(self, loss: Any, batch: int) -> None:
        value = float(keras.ops.convert_to_numpy(loss))
        if not math.isfinite(value):
            self.found = (self.epoch, batch, value)
            self.model.stop_training = True


STOPPING = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class StopOnInterrupt(keras.callbacks.Callback):
    """The first Ctrl-C (SIGINT) or SIGTERM (what `timeout`, CI runners, Kubernetes and systemd
    send) asks fit to stop after the current batch; a second one interrupts at once (Python's
    KeyboardInterrupt, or signals_interrupt's Terminated). Installed for the length of fit."""

    def __init__(self) -> None:
        super().__init__()
        self.signal = ""  # which stopped fit: "Ctrl-C" or "SIGTERM"; "" while none did
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return bool(self.signal)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        try:
            self._previous = {s: signal.signal(s, self._handle) for s in STOPPING}
        except ValueError:  # not the main thread: leave the signals as they are
            self._previous = {}

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = STOPPING[signal.Signals(signum)]
        self.model.stop_training = True
        self._restore()

    def _restore(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}
