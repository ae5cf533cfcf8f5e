"""Free-text columns: detected, weighed as TF-IDF of words and word pairs by one adapted
TextVectorization in training and in the saved model, and refused by the exports whose
operations cannot split strings."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from test_export import assert_same_predictions

from taskfit.cli.overrides import parse_set
from taskfit.data.columns import IGNORED, TEXT
from taskfit.data.view import inspect_data
from taskfit.errors import TaskfitError
from taskfit.inference.export import export
from taskfit.spec.spec import load_spec
from taskfit.training.run import train

WORDS = [
    "the",
    "a",
    "this",
    "it",
    "was",
    "is",
    "very",
    "quite",
    "really",
    "so",
    "and",
    "but",
    "box",
    "taste",
    "price",
    "colour",
]


def reviews_csv(rows: int) -> str:
    """A review (five to twelve words, one of them saying the label) and a near-unique name of
    two words per row."""
    rng = np.random.default_rng(0)
    lines = ["review,name,stars,liked"]
    for i in range(rows):
        liked = i % 2
        words = list(rng.choice(WORDS, size=int(rng.integers(4, 12))))
        words.insert(int(rng.integers(0, len(words))), "great" if liked else "awful")
        lines.append(f'"{" ".join(words)}",smith {i},{i % 5},{liked}')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("text")
    (folder / "data.csv").write_text(reviews_csv(160))
    (folder / "spec.yaml").write_text("task: binary\ndata: {source: data.csv, label: liked}\n")
    settings = parse_set(["training.epochs=30", "training.batch_size=16"])
    return train(folder / "spec.yaml", settings, folder / "runs", verbose=0).run_dir


def test_many_distinct_cells_of_several_words_are_text_and_of_two_words_left_out(
    tmp_path: Path,
) -> None:
    (tmp_path / "data.csv").write_text(reviews_csv(40))
    (tmp_path / "spec.yaml").write_text("task: binary\ndata: {source: data.csv, label: liked}\n")
    columns = {c.name: c for c in inspect_data(load_spec(tmp_path / "spec.yaml")).columns}
    assert columns["review"].kind == TEXT
    assert columns["review"].note.startswith("free text, ")
    assert columns["name"].kind == IGNORED  # "smith 3": a name, not text
    assert columns["name"].note == "identifier: unique per row"
    (tmp_path / "spec.yaml").write_text(
        "task: binary\ndata: {source: data.csv, label: liked, text: [name]}\n"
    )
    declared = {c.name: c for c in inspect_data(load_spec(tmp_path / "spec.yaml")).columns}
    assert declared["name"].kind == TEXT and declared["name"].note == "data.text"


def test_the_saved_model_weighs_the_words_it_learned_from(text_run: Path) -> None:
    model = keras.saving.load_model(text_run / "model.keras")  # nothing from taskfit
    encoder = model.get_layer("review_tf_idf")
    vocabulary = encoder.get_vocabulary()
    assert {"great", "awful", "very great"} & set(vocabulary) >= {"great", "awful"}
    rows = {
        "review": np.array([["it was great"], ["it was awful"], [""], ["qqq great"]]),
        "stars": np.array([[1.0], [1.0], [1.0], [1.0]], dtype=np.float32),
    }
    from taskfit.model.build import named_inputs

    liked = model.predict(named_inputs(rows), verbose=0)[:, 0]
    assert liked[0] > 0.5 > liked[1]  # it learned which word says what
    assert np.isfinite(liked[2])  # an empty cell: no words (unit length keeps it at zero)
    assert liked[3] > 0.5  # a word never seen beside one it knows


def test_savedmodel_exports_the_text_and_tflite_and_onnx_refuse_it(text_run: Path) -> None:
    destination = export(text_run, "savedmodel")
    assert_same_predictions(text_run, "savedmodel", destination)
    for fmt in ("tflite", "onnx"):
        with pytest.raises(TaskfitError, match=f"--format {fmt}: this model splits text"):
            export(text_run, fmt)
    assert sorted(p.name for p in (text_run / "export").iterdir()) == ["savedmodel"]
