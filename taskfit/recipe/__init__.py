"""The recommendation table: the repository's recipes/*.yaml read once, the one place the
advice (output layer, loss, metrics, optimizers, schedules, weightings) lives."""
