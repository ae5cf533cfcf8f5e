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


def mixed_csv(rows: int = 60) -> str:
    """A spreadsheet-like CSV: an id column, a string and an integer-coded categorical, gaps in a
    numeric and a categorical column, a yes/no label that depends on them, and a row without a
    label."""
    cities = ["paris", "oslo", "", "rome"]
    lines = ["id,age,city,plan,income,bought"]
    for i in range(rows):
        age, city, plan = 20 + (i * 7) % 45, cities[i % 4], 1 + i % 3
        income = "" if i % 6 == 0 else str(1000 + (i * 37) % 900)
        bought = "yes" if (age > 40) != (city == "oslo") else "no"
        lines.append(f"{1000 + i},{age},{city},{plan},{income},{'' if i == 5 else bought}")
    return "\n".join(lines) + "\n"
