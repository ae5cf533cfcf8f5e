"""YAML read into plain data with the line of every key, typed parameters with ranges, and
frozen dataclasses built from that data: the machinery every spec and recipe check uses."""
