"""`taskfit schema`: the spec's JSON Schema, generated from the validator's own definitions."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from taskfit.cli.app import app

runner = CliRunner()
CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)  # a valid schema itself
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_validates_against_the_schema(
    validator: jsonschema.Draft202012Validator, config: Path
) -> None:
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(config.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"trainig": {}}, "'trainig' was unexpected"),
        ({"training": {"epochs": 0}}, "0 is less than the minimum of 1"),
        ({"model": {"layers": [{"units": 8, "dropout": 1.5}]}}, "1.5 is greater than or equal"),
        ({"optimizer": "adamm"}, "'adamm' is not one of"),
        ({"model": {"sharing": "mmeo"}}, "'mmeo' is not one of"),
        ({"loss_weighting": "pcgard"}, "'pcgard' is not one of"),
        ({"task": "binery"}, "'binery' is not one of"),
        ({"loss": {"blend": "mse"}}, "is not valid under any of the given schemas"),
    ],
)
def test_the_schema_catches_what_the_validator_catches(
    validator: jsonschema.Draft202012Validator, spec: dict[str, object], fragment: str
) -> None:
    """Not a schema that accepts anything: the editor flags the usual mistakes."""
    document = {"task": "binary", "data": {"source": "x.csv", "label": "y"}, **spec}
    messages = [e.message for e in validator.iter_errors(document)]
    messages += [c.message for e in validator.iter_errors(document) for c in e.context or []]
    assert any(fragment in m for m in messages), messages


def test_the_schema_documents_every_key_with_its_default(
    validator: jsonschema.Draft202012Validator,
) -> None:
    training = validator.schema["properties"]["training"]["properties"]
    assert training["epochs"]["default"] == 200
    assert training["epochs"]["description"].startswith("most passes over the training split")
    assert "uncertainty" in json.dumps(validator.schema["properties"]["loss_weighting"])
