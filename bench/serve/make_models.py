#!/usr/bin/python3
"""Makes the models and request bodies of `myelin bench serve`.

  bench/serve/make_models.py OUTDIR

For each model NAME it writes, deterministically (re-running reproduces the
same bytes):

  NAME.onnx       the ONNX graph (models/sk2onnx.py: outputs "label" INT64 [N]
                  and "probabilities" FP32 [N, classes]; no ZipMap)
  NAME.pkl        the pickled scikit-learn estimator (the FastAPI peer's model)
  NAME.json       one Open Inference Protocol v2 request body, batch 1, a real row
  NAME.rows.json  {"input": "X", "features": F, "rows": [[...]], "label": [...]}:
                  ROWS real rows for varied requests, with scikit-learn's labels

Models:
  logistic_regression  LogisticRegression, iris, 4 features, 3 classes (the
                       same as models/make_models.py's)
  trees                GradientBoostingClassifier, 100 trees of depth 6,
                       breast cancer, 30 features, binary
  mlp                  MLPClassifier, one hidden layer of 128, 784 inputs,
                       10 classes, trained briefly on synthetic data
  mlp_wide             32-2048-2048-10 with seeded random weights, not
                       trained, ONNX and request body only: a model whose
                       compute, not HTTP, limits the server (8.4 MFLOP per
                       row behind a 32-number request), for the overload
                       table (the shipped-size models saturate the HTTP layer
                       first on this machine, so twice their rate tests the
                       sockets, not the bounded queue)

Uses Debian's python3-sklearn and python3-onnx only. The graphs are checked
with onnx.checker; when onnxruntime-node is installed (scripts/setup-bench-peers
puts it in build/model-npm) every row is also run through ONNX Runtime and its
labels and probabilities compared with scikit-learn's.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))
import onnx  # noqa: E402
import sk2onnx  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_iris  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

ROWS = 256
ORT_DIR = os.path.join(ROOT, "build", "model-npm", "node_modules")


def synthetic_digits(n=2000, features=784, classes=10, seed=0):
    """Ten noisy prototypes in [0, 1]^784, rounded to 3 decimals (short JSON)."""
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, features)) < 0.2
    y = np.arange(n) % classes
    x = np.clip(protos[y] * 0.8 + rng.normal(0.0, 0.25, (n, features)), 0.0, 1.0)
    return np.round(x, 3), y


def build():
    """Yields (name, estimator, onnx model, x) with x already float32-exact."""
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32).astype(np.float64)
    est = LogisticRegression(max_iter=1000).fit(x, y)
    yield "logistic_regression", est, sk2onnx.logistic_regression(est, x.shape[1]), x
    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32).astype(np.float64)
    est = GradientBoostingClassifier(n_estimators=100, max_depth=6, random_state=0).fit(x, y)
    yield "trees", est, sk2onnx.gradient_boosting_classifier(est, x.shape[1]), x
    x, y = synthetic_digits()
    x = x.astype(np.float32).astype(np.float64)
    est = MLPClassifier(hidden_layer_sizes=(128,), max_iter=20, random_state=0).fit(x, y)
    yield "mlp", est, sk2onnx.mlp(est, x.shape[1], True), x


def as_json_row(row):
    # repr of the float32 value: the shortest text that parses back to it
    return [float(repr(np.float32(v))) for v in row]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def save(outdir, name, est, model, x):
    onnx.checker.check_model(model)
    path = os.path.join(outdir, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    onnx.checker.check_model(onnx.load(path))
    with open(os.path.join(outdir, name + ".pkl"), "wb") as f:
        pickle.dump(est, f, protocol=pickle.HIGHEST_PROTOCOL)
    # Rows spread over the data set, so requests differ in class and path.
    picks = np.linspace(0, len(x) - 1, ROWS).astype(int)
    rows = [as_json_row(x[i]) for i in picks]
    labels = [int(v) for v in est.predict(np.asarray(rows, dtype=np.float32))]
    write_json(os.path.join(outdir, name + ".rows.json"),
               {"input": "X", "features": x.shape[1], "rows": rows, "label": labels})
    body = {"id": "1", "inputs": [{"name": "X", "shape": [1, x.shape[1]], "datatype": "FP32",
                                   "data": [rows[0]]}]}
    write_json(os.path.join(outdir, name + ".json"), body)
    return rows, est.predict_proba(np.asarray(rows, dtype=np.float32))


ORT_CHECK = r"""
const ort = require(process.argv[1] + '/onnxruntime-node');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
(async () => {
  const out = {};
  for (const c of cases) {
    const s = await ort.InferenceSession.create(c.model, {intraOpNumThreads: 1});
    const n = c.rows.length, f = c.rows[0].length;
    const r = await s.run({X: new ort.Tensor('float32', Float32Array.from(c.rows.flat()), [n, f])});
    out[c.name] = {label: Array.from(r.label.data, Number), probabilities: Array.from(r.probabilities.data)};
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""


def check_with_ort(outdir, expected):
    """expected: name -> (rows, sklearn probabilities). Returns False on mismatch."""
    if not shutil.which("node") or not os.path.isdir(os.path.join(ORT_DIR, "onnxruntime-node")):
        print("make_models: onnxruntime-node not installed; ONNX Runtime check skipped")
        return True
    cases = [{"name": n, "model": os.path.join(outdir, n + ".onnx"), "rows": r}
             for n, (r, _) in expected.items()]
    run = subprocess.run(["node", "-e", ORT_CHECK, ORT_DIR], input=json.dumps(cases),
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        print("make_models: onnxruntime-node failed: " + run.stderr.strip(), file=sys.stderr)
        return False
    got = json.loads(run.stdout)
    ok = True
    for name, (rows, proba) in expected.items():
        ort_proba = np.asarray(got[name]["probabilities"]).reshape(proba.shape)
        ort_label = np.asarray(got[name]["label"])
        sk_label = np.argmax(proba, axis=1)
        diff = float(np.max(np.abs(ort_proba - proba)))
        same = int(np.sum(ort_label == sk_label))
        print(f"make_models: {name}: onnxruntime-node agrees with sklearn on {same}/{len(rows)} "
              f"labels, max |probability difference| {diff:.2e}")
        if same != len(rows) or diff > 1e-4:
            ok = False
    return ok


def save_wide(outdir):
    """mlp_wide: the weights of an MLP that sklearn would take minutes to fit."""
    rng = np.random.default_rng(1)
    x = np.round(rng.random((1, 32)), 3)
    sizes = [x.shape[1], 2048, 2048, 10]
    net = type("Net", (), {})()
    net.coefs_ = [rng.normal(0.0, 1.0 / np.sqrt(a), (a, b)) for a, b in zip(sizes, sizes[1:])]
    net.intercepts_ = [rng.normal(0.0, 0.1, b) for b in sizes[1:]]
    model = sk2onnx.mlp(net, x.shape[1], True)
    onnx.checker.check_model(model)
    with open(os.path.join(outdir, "mlp_wide.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    body = {"id": "1", "inputs": [{"name": "X", "shape": [1, x.shape[1]], "datatype": "FP32",
                                   "data": [as_json_row(x[0])]}]}
    write_json(os.path.join(outdir, "mlp_wide.json"), body)
    print("make_models: wrote mlp_wide (32-2048-2048-10, random weights)")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_models.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    warnings.filterwarnings("ignore")  # the short MLP training does not converge, by design
    expected = {}
    for name, est, model, x in build():
        expected[name] = save(outdir, name, est, model, x)
        print(f"make_models: wrote {name} ({x.shape[1]} features, {len(est.classes_)} classes)")
    save_wide(outdir)
    if not check_with_ort(outdir, expected):
        sys.exit("make_models: ONNX Runtime disagrees with scikit-learn")


if __name__ == "__main__":
    main()
