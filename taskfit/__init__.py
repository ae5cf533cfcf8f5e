"""taskfit: a YAML task spec becomes the right Keras model, trained.

The package root imports nothing heavy: TensorFlow loads only when a model is built or fitted.
"""

import os

# TensorFlow reads this once, when it is first imported, from whichever taskfit module that is:
# set here, every import path is covered. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
