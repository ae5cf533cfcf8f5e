"""taskfit: a YAML task spec becomes the right Keras model, trained.

The package root imports nothing heavy: TensorFlow loads only when a model is built or fitted.
"""

__version__ = "0.1.0"
