"""YAML as people write it: merge keys mean what YAML says, a limit says which limit, and the key
that is wrong is named however long the file around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskfit.errors import SpecError
from taskfit.spec.spec import parse_spec

MINIMAL = "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, Path("."))
    return [str(p) for p in caught.value.problems]


def test_a_merge_key_then_an_override_is_the_merged_mapping() -> None:
    text = MINIMAL + (
        "model:\n"
        "  layers:\n"
        "    - &layer {units: 32, activation: relu, dropout: 0.1}\n"
        "    - <<: *layer\n"
        "      units: 16\n"
    )
    layers = parse_spec(text, Path(".")).spec.model.layers
    assert layers is not None
    assert [(layer.units, layer.activation, layer.dropout) for layer in layers] == [
        (32, "relu", 0.1),
        (16, "relu", 0.1),
    ]


def test_a_list_of_merges_takes_each_key_from_the_first_that_has_it() -> None:
    text = MINIMAL + (
        "model:\n"
        "  layers:\n"
        "    - &wide {units: 64, activation: relu}\n"
        "    - &light {units: 8, dropout: 0.2}\n"
        "    - <<: [*light, *wide]\n"
    )
    layers = parse_spec(text, Path(".")).spec.model.layers
    assert layers is not None
    assert (layers[2].units, layers[2].activation, layers[2].dropout) == (8, "relu", 0.2)


def test_a_key_merged_in_is_checked_and_named_at_the_line_it_is_written() -> None:
    text = MINIMAL + (
        "model:\n  layers:\n    - &layer {units: 32, activaton: relu}\n    - <<: *layer\n"
    )
    found = problems(text)
    assert any(p.startswith("<spec>:5: model.layers[0].activaton: unknown key") for p in found)
    assert any(p.startswith("<spec>:5: model.layers[1].activaton: unknown key") for p in found)


def test_a_key_given_twice_beside_a_merge_is_still_a_duplicate() -> None:
    text = MINIMAL + "training: &t {epochs: 3}\nmodel:\n  <<: {}\n  members: 1\n  members: 2\n"
    assert "<spec>:7: model.members: is given twice; keep one" in problems(text)


def test_a_long_list_written_out_is_no_alias_bomb_and_the_unknown_key_is_named() -> None:
    text = MINIMAL + "extras: [" + ", ".join(["1"] * 200_000) + "]\n"
    found = problems(text)
    assert len(found) == 1 and found[0].startswith("<spec>:3: extras: unknown key"), found


def test_aliases_that_multiply_are_refused_by_their_limit() -> None:
    text = MINIMAL + "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 5):
        refs = ", ".join([f"*{'a' * level}"] * 10)
        text += f"{'b' * level}: &{'a' * (level + 1)} [{refs}]\n"
    assert problems(text) == [
        "<spec>: YAML: expands to more than 10000 values through aliases (*name); write the spec"
        " out without repeating aliases"
    ]


def test_an_alias_used_a_few_times_is_fine() -> None:
    text = MINIMAL + "model:\n  layers: [&l {units: 8}, *l, *l]\n"
    layers = parse_spec(text, Path(".")).spec.model.layers
    assert layers is not None and [layer.units for layer in layers] == [8, 8, 8]


@pytest.mark.parametrize("indent", ["", "  ", "  - "])
def test_a_key_beyond_yamls_length_limit_says_the_limit(indent: str) -> None:
    parent = {"": "", "  ": "model:\n", "  - ": "model:\n  layers:\n"}[indent]
    text = MINIMAL + parent + indent + "k" * 1100 + ": 1\n"
    (found,) = problems(text)
    assert "is 1100 characters long; YAML allows at most 1024 for a key on one line" in found
    assert found.startswith(f"<spec>:{text.count(chr(10))}: YAML: is not valid YAML: the key 'kkk")


def test_a_key_of_1024_characters_is_a_key() -> None:
    found = problems(MINIMAL + "k" * 1024 + ": 1\n")
    assert len(found) == 1 and found[0].startswith(f"<spec>:3: {'k' * 1024}: unknown key")
