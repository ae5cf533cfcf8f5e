"""A trained run used: `predict` and `evaluate` on a new CSV, and `export` to SavedModel,
TFLite or ONNX."""
