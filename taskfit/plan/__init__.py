"""Spec + data + table -> the plan (every choice the table makes, checked for contradictions),
and `check`, which validates all of it before TensorFlow loads."""
