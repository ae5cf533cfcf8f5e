"""Logging a finished run to an experiment tracker (MLflow, the `mlflow` extra), from its run
folder: what the folder holds is what the tracker gets."""
