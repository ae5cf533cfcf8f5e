"""Loss weightings that change each head's gradient before the sum, in the compiled training
step (a custom `train_step`, as Keras's guide "Customizing what happens in fit()" writes one):

pcgrad    (Yu, Kumar, Gupta, Levine, Hausman & Finn, NeurIPS 2020) each head's gradient on the
          shared weights, for every other head in a random order, loses its component along
          that head's gradient where the two point against each other (a negative dot
          product); the projected gradients are summed. The heads keep their loss_weight.
gradnorm  (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018) learned weights
          w = K * softmax(v) (so they stay positive and sum to K, the paper's renormalisation).
          Each step v takes the gradient of sum_i |w_i * n_i - mean(w * n) * r_i ** alpha|,
          where n_i is the norm of head i's gradient on the shared weights and
          r_i = (L_i / L_i(0)) / mean_j(L_j / L_j(0)) its relative inverse training rate (the
          target held constant); the model's weights take the gradient of sum_i w_i * L_i.

"Shared weights" are those that more than one head's loss reaches (the trunk, the experts,
the input embeddings), found from the gradients when the step is traced, as LibMTL applies
both methods to the shared parameters. A head's own layers get its own gradient.

Per-head gradients need TensorFlow's GradientTape: these train in-process on TensorFlow, not
on the JAX workers (`train --workers` refuses them).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from taskfit.model.weighted import WeightedHeads
from taskfit.plan.plan import Head

TINY = 1e-12  # keeps a division by a zero gradient's squared norm finite


def project_conflicts(grads: Any, order: Any) -> Any:
    """PCGrad on a (heads, weights) matrix of the heads' gradients: each row, for every other
    head in `order` (a permutation of the rows), minus its projection on that head's original
    gradient where their dot product is negative. Returns the projected matrix."""
    count = int(grads.shape[0])
    rows = []
    for i in range(count):
        row = grads[i]
        for position in range(count):
            j = order[position]
            other = keras.ops.take(grads, j, axis=0)
            dot = keras.ops.sum(row * other)
            conflict = keras.ops.logical_and(dot < 0, keras.ops.not_equal(j, i))
            scale = dot / (keras.ops.sum(keras.ops.square(other)) + TINY)
            row = row - keras.ops.where(conflict, scale, 0.0) * other
        rows.append(row)
    return keras.ops.stack(rows)


def gradnorm_weights(logits: Any) -> Any:
    """w = K * softmax(v): positive weights that sum to the number of heads."""
    return int(logits.shape[0]) * keras.ops.softmax(logits)


def gradnorm_loss(logits: Any, norms: Any, ratios: Any, alpha: float) -> Any:
    """GradNorm's loss on the weights' logits: sum_i |w_i n_i - mean(w n) r_i^alpha|, with
    r the loss ratios over their mean and the target held constant."""
    weighted = gradnorm_weights(logits) * norms
    relative = ratios / keras.ops.mean(ratios)
    target = keras.ops.stop_gradient(keras.ops.mean(weighted) * relative**alpha)
    return keras.ops.sum(keras.ops.abs(weighted - target))


class HeadGradients(WeightedHeads):
    """The training view for pcgrad and gradnorm (see the module's docstring)."""

    def __init__(
        self,
        net: keras.Model,
        heads: list[Head],
        losses: dict[str, Any],
        method: str,
        alpha: float = 0.0,
    ):
        super().__init__(net, heads, losses, name=f"{method}_weighted")
        self.method = method
        self.alpha = float(alpha)
        count = len(heads)
        self.fixed = keras.ops.convert_to_tensor([head.weight for head in heads], "float32")
        if method == "gradnorm":
            self.logits = self.add_weight(
                shape=(count,), initializer="zeros", name="gradnorm_logits"
            )
            # L_i(0): each head's loss at the first step, kept (and checkpointed) for the ratios
            self.initial_losses = self.add_weight(
                shape=(count,), initializer="zeros", trainable=False, name="initial_losses"
            )
            self.started = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="started"
            )
        else:
            # the order the heads are projected in, drawn each step (the seed follows training.seed)
            self.order_seed = keras.random.SeedGenerator(name="pcgrad_order")

    def head_weights(self) -> Any:
        if self.method == "gradnorm":
            return gradnorm_weights(self.logits)
        return self.fixed

    def weighted(self, values: list[Any]) -> Any:
        weights = self.head_weights()
        return sum(weights[i] * value for i, value in enumerate(values))

    def weights_now(self) -> dict[str, float]:
        weights = keras.ops.convert_to_numpy(self.head_weights())
        return dict(zip(self.head_names, (float(w) for w in weights), strict=True))

    def train_step(self, data: Any) -> Any:
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        own = [self.logits] if self.method == "gradnorm" else []
        variables = [v for v in self.trainable_variables if all(v is not o for o in own)]
        with tf.GradientTape(persistent=True) as tape:
            y_pred = self(x, training=True)
            values = self.head_values(y, y_pred, sample_weight)
            extra = sum(self.losses) if self.losses else None
            weights = keras.ops.stop_gradient(self.head_weights())
            total = self.weighted(values) + (extra if extra is not None else 0.0)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(total)
        per_head = [_dense(tape.gradient(value, variables)) for value in values]
        added = _dense(tape.gradient(extra, variables)) if extra is not None else []
        added += [None] * (len(variables) + len(own) - len(added))
        del tape
        shared = [j for j in range(len(variables)) if sum(g[j] is not None for g in per_head) > 1]
        grads = self._combined(per_head, weights, shared)
        if self.method == "gradnorm":
            own_grads = self._gradnorm_step(per_head, keras.ops.stack(values), shared)
            grads, variables = grads + own_grads, variables + own
        grads = [_plus(g, a) for g, a in zip(grads, added, strict=True)]
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        )
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _combined(self, per_head: list[list[Any]], weights: Any, shared: list[int]) -> list[Any]:
        """The gradient each model weight takes: sum_i w_i g_i; for pcgrad on the shared
        weights, the sum of the projected w_i g_i."""
        projected = shared if self.method == "pcgrad" else []
        grads = [
            None
            if j in projected
            else _sum([weights[i] * g[j] for i, g in enumerate(per_head) if g[j] is not None])
            for j in range(len(per_head[0]))
        ]
        if not projected:
            return grads
        matrix = keras.ops.stack(
            [_flat([weights[i] * g[j] for j in shared]) for i, g in enumerate(per_head)]
        )
        order = keras.random.shuffle(
            keras.ops.arange(len(per_head), dtype="int32"), seed=self.order_seed
        )
        summed = keras.ops.sum(project_conflicts(matrix, order), axis=0)
        for j, part in zip(shared, _unflat(summed, [per_head[0][j] for j in shared]), strict=True):
            grads[j] = part
        return grads

    def _gradnorm_step(
        self, per_head: list[list[Any]], values: Any, shared: list[int]
    ) -> list[Any]:
        """The gradient of GradNorm's loss on the weights' logits (one, in a list)."""
        import tensorflow as tf

        first = self.started < 0.5
        self.initial_losses.assign(
            keras.ops.where(first, keras.ops.stop_gradient(values), self.initial_losses)
        )
        self.started.assign(1.0)
        norms = keras.ops.stack(
            [
                keras.ops.sqrt(keras.ops.sum(keras.ops.square(_flat([g[j] for j in shared]))))
                if shared
                else keras.ops.zeros(())
                for g in per_head
            ]
        )
        ratios = values / keras.ops.maximum(self.initial_losses, TINY)
        with tf.GradientTape() as tape:
            loss = gradnorm_loss(self.logits, keras.ops.stop_gradient(norms), ratios, self.alpha)
        return [tape.gradient(loss, self.logits)]


def _dense(grads: list[Any]) -> list[Any]:
    """Gradients as dense tensors (an Embedding's comes as tf.IndexedSlices, which takes no
    arithmetic); None stays None (a weight the loss does not reach)."""
    import tensorflow as tf

    return [None if g is None else tf.convert_to_tensor(g) for g in grads]


def _sum(parts: list[Any]) -> Any:
    if not parts:
        return None
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _plus(grad: Any, added: Any) -> Any:
    if added is None:
        return grad
    return added if grad is None else grad + added


def _flat(parts: list[Any]) -> Any:
    return keras.ops.concatenate([keras.ops.reshape(p, (-1,)) for p in parts])


def _unflat(vector: Any, like: list[Any]) -> list[Any]:
    out, start = [], 0
    for part in like:
        size = int(np.prod(part.shape))
        out.append(keras.ops.reshape(vector[start : start + size], part.shape))
        start += size
    return out
