"""Writes taskfit/data/datasets/*.csv from scikit-learn's bundled copies of public data.

Run once by a maintainer (scikit-learn is a dev dependency only):
    python scripts/make_datasets.py
The CSVs and index.yaml are committed; taskfit never downloads anything.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn import datasets

OUT = Path(__file__).resolve().parents[1] / "taskfit" / "data" / "datasets"


def snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def breast_cancer() -> pd.DataFrame:
    raw = datasets.load_breast_cancer()
    frame = pd.DataFrame(raw.data, columns=[snake(c) for c in raw.feature_names])
    # scikit-learn codes malignant as 0; a diagnosis column reads 1 for the disease found.
    frame["diagnosis"] = (raw.target == 0).astype(int)
    return frame


def digits() -> pd.DataFrame:
    raw = datasets.load_digits()
    columns = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    frame = pd.DataFrame(raw.data.astype(int), columns=columns)
    frame["digit"] = raw.target
    return frame


def diabetes() -> pd.DataFrame:
    raw = datasets.load_diabetes(scaled=False)
    frame = pd.DataFrame(raw.data, columns=raw.feature_names)
    frame["progression"] = raw.target.astype(int)
    return frame


def wine() -> pd.DataFrame:
    raw = datasets.load_wine()
    frame = pd.DataFrame(raw.data, columns=[snake(c) for c in raw.feature_names])
    frame["cultivar"] = np.array(["A", "B", "C"])[raw.target]
    return frame


DATASETS = {
    "breast_cancer": (
        breast_cancer,
        "binary",
        "diagnosis",
        "Breast cancer Wisconsin (diagnostic): 30 cell-nucleus measurements; "
        "diagnosis 1 = malignant, 0 = benign",
    ),
    "digits": (
        digits,
        "multiclass",
        "digit",
        "Optical recognition of handwritten digits: 8x8 pixel intensities 0-16; digit 0-9",
    ),
    "diabetes": (
        diabetes,
        "regression",
        "progression",
        "Diabetes: age, sex, BMI, blood pressure and six serum measurements; "
        "progression one year after baseline",
    ),
    "wine": (
        wine,
        "multiclass",
        "cultivar",
        "Wine recognition: 13 chemical measurements of wines from three cultivars A, B, C; "
        "alcohol or color_intensity can serve as a second, regression label",
    ),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, (make, task, label, about) in DATASETS.items():
        frame = make()
        path = OUT / f"{name}.csv"
        frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")
        index[name] = {
            "file": path.name,
            "task": task,
            "label": label,
            "rows": len(frame),
            "features": frame.shape[1] - 1,
            "classes": int(frame[label].nunique()) if task != "regression" else None,
            "about": about,
            "source": "scikit-learn's bundled copy (sklearn.datasets.load_" + name + ")",
        }
        assert np.isfinite(frame.select_dtypes("number").to_numpy(dtype=float)).all()
    header = "# Written by scripts/make_datasets.py; a test checks it against the CSV files.\n"
    (OUT / "index.yaml").write_text(header + yaml.safe_dump(index, sort_keys=False))


if __name__ == "__main__":
    main()
