"""The rows as the model takes them: the in-memory parts, a streamed CSV's parts, the split,
and the training statistics the preprocessing is fitted to."""
