"""Small data the tests write (imported as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations


def tiny_csv(rows: int = 40, label: str = "binary") -> str:
    """A small, learnable CSV: two numeric features and a label of the asked kind."""
    lines = ["a,b,y"]
    for i in range(rows):
        a, b = (i % 7) / 7, (i % 5) / 5
        y = {"binary": int(a > 0.4), "multiclass": i % 3, "regression": round(3 * a - b, 3)}[label]
        lines.append(f"{a:.3f},{b:.3f},{y}")
    return "\n".join(lines) + "\n"
