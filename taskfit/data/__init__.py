"""Where the rows come from and what they hold: the CSV reader, the bundled datasets, column
types, label formats, and the task a label column calls for. Standard library only."""
