#!/usr/bin/python3
"""scikit-learn peer of `myelin bench inference`.

Reads a JSON list of cases; prints {"version", "results": {name: {per_call_ns}}}.
per_call_ns: mean of `block` back-to-back `est.predict(x)` calls (numpy input
already built), per sample. Linear and MLP models carry myelin's exact weights
(read from raw float32 files); the tree ensemble is a GradientBoostingRegressor
of the same size trained on the same data (not the same trees).
"""
import json
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPRegressor

warnings.filterwarnings("ignore")


def build(c):
    e = c["extra"]
    kind = c["model"]
    f = c["shape"][1]
    if kind == "linear":
        est = LinearRegression().fit(np.zeros((2, f)), np.zeros(2))
        est.coef_ = np.fromfile(e["weights"], dtype=np.float32).astype(np.float64)
        est.intercept_ = float(e["intercept"])
        return est
    if kind == "mlp":
        layers = [int(v) for v in e["layers"].split(",")]
        est = MLPRegressor(hidden_layer_sizes=tuple(layers[1:-1]), max_iter=1)
        est.fit(np.zeros((2, layers[0])), np.zeros((2, layers[-1])))
        for i in range(len(layers) - 1):
            w = np.fromfile(e[f"W{i}"], dtype=np.float32).reshape(layers[i + 1], layers[i])
            est.coefs_[i] = w.T.astype(np.float64)
            est.intercepts_[i] = np.fromfile(e[f"B{i}"], dtype=np.float32).astype(np.float64)
        return est
    if kind == "tree":
        x = np.fromfile(e["x"], dtype=np.float32).reshape(-1, f)
        y = np.fromfile(e["y"], dtype=np.float32)
        return GradientBoostingRegressor(n_estimators=int(e["trees"]), max_depth=int(e["depth"]),
                                         learning_rate=0.1, random_state=0).fit(x, y)
    raise ValueError(kind)


def main():
    cases = json.load(open(sys.argv[1]))
    results = {}
    models = {}
    for c in cases:
        try:
            key = (c["model"], json.dumps(c["extra"], sort_keys=True), c["shape"][1])
            if key not in models:
                models[key] = build(c)
            est = models[key]
            x = np.sin(np.arange(np.prod(c["shape"]), dtype=np.float32)).reshape(c["shape"]) * 0.5
            for _ in range(20):
                est.predict(x)
            per = []
            for _ in range(c["samples"]):
                t0 = time.perf_counter_ns()
                for _ in range(c["block"]):
                    est.predict(x)
                per.append((time.perf_counter_ns() - t0) / c["block"])
            results[c["name"]] = {"per_call_ns": per}
        except Exception as ex:  # reported, not fatal
            results[c["name"]] = {"error": repr(ex)}
    print()
    print(json.dumps({"version": "scikit-learn " + sklearn.__version__, "results": results}))


if __name__ == "__main__":
    main()
