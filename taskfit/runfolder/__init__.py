"""The run folder on disk: its files, written atomically, its status, and a finished run read
back (standard library only)."""
