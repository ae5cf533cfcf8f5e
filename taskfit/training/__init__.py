"""A run: one fit (`fit`), the run around it (`run`: the folder's lifecycle, refit, smoke,
status), resuming, the single-head baselines, several processes, and `tune`."""
