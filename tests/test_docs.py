"""The README's generated sections must match the code they describe."""

from __future__ import annotations

from pathlib import Path

from taskfit.cli.docs import spec_reference, table_reference

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def section(name: str) -> str:
    return README.split(f"<!-- {name}:start -->\n")[1].split(f"\n<!-- {name}:end -->")[0]


def test_readme_spec_reference_is_generated_from_the_spec() -> None:
    assert section("spec") == spec_reference()


def test_readme_table_is_generated_from_the_recipes() -> None:
    assert section("table") == table_reference()


def test_readme_commands_are_what_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    test_command = (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest'
    )
    assert test_command in README and test_command in ci
