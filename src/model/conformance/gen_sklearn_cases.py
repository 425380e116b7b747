#!/usr/bin/python3
"""Trains scikit-learn models and writes ONNX test cases for the cross-check.

Each case is a directory like ONNX's node tests: model.onnx (built by
models/sk2onnx.py) and test_data_set_0/{input,output}_K.pb holding held-out
inputs and scikit-learn's own predictions (predict / predict_proba), which
myelin must reproduce. Small data and models: the whole run takes seconds.

usage: gen_sklearn_cases.py OUT_DIR
"""
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "models"))
import sk2onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,  # noqa: E402
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402


def write(out, name, model, x_test, outputs):
    d = os.path.join(out, name, "test_data_set_0")
    os.makedirs(d)
    with open(os.path.join(out, name, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(d, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x_test.astype(np.float32)).SerializeToString())
    for i, y in enumerate(outputs):
        with open(os.path.join(d, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(y).SerializeToString())


def main():
    out = sys.argv[1]
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rng = 0
    xr, yr = make_regression(n_samples=400, n_features=10, noise=0.1, random_state=rng)
    xr = xr.astype(np.float32)
    xc, yc = make_classification(n_samples=400, n_features=10, n_informative=6, random_state=rng)
    xc = xc.astype(np.float32)
    x3, y3 = make_classification(n_samples=400, n_features=10, n_informative=6, n_classes=3,
                                 random_state=rng)
    x3 = x3.astype(np.float32)
    tr, te = slice(0, 300), slice(300, 400)

    def reg(name, est, conv, x, y):
        est.fit(x[tr], y[tr])
        pred = est.predict(x[te]).reshape(-1, 1).astype(np.float64)
        write(out, name, conv(est, x.shape[1]), x[te], [pred])

    def clf(name, est, conv, x, y):
        est.fit(x[tr], y[tr])
        write(out, name, conv(est, x.shape[1]), x[te],
              [est.predict(x[te]).astype(np.int64), est.predict_proba(x[te]).astype(np.float64)])

    reg("linear_regression", LinearRegression(), sk2onnx.linear_regression, xr, yr)
    clf("logistic_regression_binary", LogisticRegression(max_iter=1000),
        sk2onnx.logistic_regression, xc, yc)
    clf("logistic_regression_multiclass", LogisticRegression(max_iter=1000),
        sk2onnx.logistic_regression, x3, y3)
    reg("gradient_boosting_regressor",
        GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=rng),
        sk2onnx.gradient_boosting_regressor, xr, yr)
    clf("gradient_boosting_classifier",
        GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=rng),
        sk2onnx.gradient_boosting_classifier, xc, yc)
    reg("random_forest_regressor",
        RandomForestRegressor(n_estimators=20, max_depth=6, random_state=rng),
        sk2onnx.random_forest_regressor, xr, yr)
    clf("random_forest_classifier",
        RandomForestClassifier(n_estimators=20, max_depth=6, random_state=rng),
        sk2onnx.random_forest_classifier, x3, y3)
    reg("mlp_regressor",
        MLPRegressor(hidden_layer_sizes=(16,), max_iter=300, random_state=rng),
        lambda e, f: sk2onnx.mlp(e, f, False), xr, yr / 100.0)
    clf("mlp_classifier", MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=rng),
        lambda e, f: sk2onnx.mlp(e, f, True), x3, y3)
    print(f"wrote {len(os.listdir(out))} scikit-learn cases to {out}")


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
