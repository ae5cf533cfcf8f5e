"""Plan + training statistics -> the Keras model, its losses, optimizer, metrics and the
weighting of several heads. The modules that build Keras objects live here."""
