#!/usr/bin/python3
"""Makes the example models shipped in models/ (run from anywhere).

  logistic_regression.onnx  LogisticRegression, 4 features, 3 classes (iris)
  gradient_boosting.onnx    GradientBoostingClassifier, 50 trees of depth 3,
                            binary, 30 features (breast cancer)
  mlp.onnx                  MLPClassifier 64-32-10 (digits)
  *.input.json              one sample row for `myelin predict --input`

Uses Debian's python3-sklearn and python3-onnx only (models/sk2onnx.py
builds the ONNX graphs). Deterministic: re-running reproduces the files.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sk2onnx  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_iris  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402


def save(name, model, x):
    with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(HERE, name + ".input.json"), "w") as f:
        json.dump({"X": [[round(float(v), 6) for v in x]]}, f)
        f.write("\n")


def main():
    import warnings
    warnings.filterwarnings("ignore")
    x, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=1000).fit(x, y)
    save("logistic_regression", sk2onnx.logistic_regression(est, x.shape[1]), x[0])
    x, y = load_breast_cancer(return_X_y=True)
    est = GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0).fit(x, y)
    save("gradient_boosting", sk2onnx.gradient_boosting_classifier(est, x.shape[1]), x[0])
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    est = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(x, y)
    save("mlp", sk2onnx.mlp(est, x.shape[1], True), x[0])


if __name__ == "__main__":
    main()
