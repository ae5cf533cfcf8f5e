"""What a run achieved, drawn and told: plots, `report`, `compare` (matplotlib, no Keras)."""
