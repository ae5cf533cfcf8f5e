"""The docs pages' generated sections must match the code they describe, and the site lists them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from taskfit.cli.docs import rewrite, spec_reference, table_reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(page: str, name: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    return text.split(f"<!-- {name}:start -->\n")[1].split(f"\n<!-- {name}:end -->")[0]


def test_docs_spec_reference_is_generated_from_the_spec() -> None:
    assert section("spec.md", "spec") == spec_reference()


def test_docs_table_is_generated_from_the_recipes() -> None:
    assert section("table.md", "table") == table_reference()


def test_rewriting_the_pages_changes_nothing() -> None:
    for page in DOCS.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert rewrite(text) == text, f"{page.name}: run python -m taskfit.cli.docs docs/"


def test_each_reliability_promise_names_tests_that_exist() -> None:
    """The README's reliability table: every promise names a test, and every test it names is
    here (a renamed file would leave a promise checked by nothing)."""
    table = README.split("## Reliability\n")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    named = [re.findall(r"`(tests/[\w/]+\.py)`", row) for row in rows[1:]]
    assert len(named) >= 10 and all(named), rows
    missing = [path for paths in named for path in paths if not (ROOT / path).is_file()]
    assert not missing


def test_readme_commands_are_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest'
    )
    assert test_command in README and test_command in ci


def pages(nav: Any) -> list[str]:
    """Every page a nav names: entries are "page.md", {title: "page.md"} or {title: [...]}."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in pages(value)]
    return [page for entry in nav for page in pages(entry)]


def test_the_site_nav_lists_every_page_and_only_pages_that_exist() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    listed = pages(config["nav"])
    assert len(listed) == len(set(listed)), "a page is listed twice"
    on_disk = {p.name for p in DOCS.glob("*.md")}
    assert not on_disk - set(listed), "docs pages missing from mkdocs.yml's nav"
    assert not set(listed) - on_disk, "mkdocs.yml's nav names pages that do not exist"
