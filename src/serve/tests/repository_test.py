#!/usr/bin/python3
"""End-to-end tests of `myelin serve --repository DIR`: a Triton-style model
repository (DIR/<name>/<version>/model.onnx plus DIR/<name>/config.toml),
models that fail to load (a broken file, a bad config.toml), load and
unload at run time, and a reload to a new version under load that must
fail no request.

Run:  /usr/bin/python3 repository_test.py --myelin BUILD/bin/myelin \
          --source-dir /work/main [-v] [Class[.test]]
  (or MYELIN_BIN / MYELIN_SOURCE_DIR in the environment; see e2e.py).
"""

import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np
import requests

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import ServerTestCase, decode, infer_json  # noqa: E402

MLP_CONFIG = """# serving settings of mlp
max_batch_size = 8
max_queue_delay_us = 100
max_queue_size = 256
default_timeout_ms = 5000
workers = 2
"""


class Repository(ServerTestCase):
    SERVER_ARGS = None

    def make_repo(self, broken=True, bad_config=True):
        """DIR with mlp (config.toml), logistic_regression and
        gradient_boosting, plus `broken` (not an ONNX file) and `badcfg`
        (a config.toml with an unknown key)."""
        root = tempfile.mkdtemp(prefix="myelin_repo_")
        self.addCleanup(shutil.rmtree, root, True)
        self.root = root
        for m in e2e.MODELS:
            self.add_version(m, 1)
        self.write(os.path.join(root, "mlp", "config.toml"), MLP_CONFIG)
        if broken:
            os.makedirs(os.path.join(root, "broken", "1"))
            self.write(os.path.join(root, "broken", "1", "model.onnx"),
                       "this is not an ONNX model\n")
        if bad_config:
            self.add_version("badcfg", 1, source="logistic_regression")
            self.write(os.path.join(root, "badcfg", "config.toml"),
                       "max_batch_size = 4\nmax_batch = 8\n")
        return root

    def add_version(self, name, version, source=None):
        d = os.path.join(self.root, name, str(version))
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(e2e.model_path(source or name), os.path.join(d, "model.onnx.tmp"))
        os.rename(os.path.join(d, "model.onnx.tmp"), os.path.join(d, "model.onnx"))

    @staticmethod
    def write(path, text):
        with open(path, "w") as f:
            f.write(text)

    def start(self, *args):
        self.server = self.start_server("--repository", self.root, *args)
        return self.server

    def index(self):
        r = self.post("/v2/repository/index")
        self.assertEqual(r.status_code, 200, r.text)
        return {e["name"]: e for e in r.json()}

    # ---------------------------------------------------------------------

    def test_index_reports_ready_and_unavailable_models(self):
        self.make_repo()
        self.start()
        idx = self.index()
        self.assertEqual(sorted(idx), ["badcfg", "broken", "gradient_boosting",
                                       "logistic_regression", "mlp"])
        for m in e2e.MODELS:
            self.assertEqual(idx[m]["state"], "READY", idx[m])
            self.assertEqual(idx[m]["version"], "1")
            self.assertNotIn("reason", idx[m])
        for m in ("broken", "badcfg"):
            self.assertEqual(idx[m]["state"], "UNAVAILABLE", idx[m])
            self.assertTrue(idx[m].get("reason"), idx[m])
        self.assertIn("model.onnx", idx["broken"]["reason"] + idx["broken"].get("path", ""))

    def test_broken_model_is_unavailable_while_others_serve(self):
        self.make_repo()
        self.start()
        rows = e2e.sample_rows("logistic_regression")
        want = e2e.predict("logistic_regression", rows)
        body = infer_json(rows)
        for m in ("broken", "badcfg"):
            self.assert_error(self.post("/v2/models/%s/infer" % m, json=body), 503, m)
            self.assert_error(self.get("/v2/models/%s/ready" % m), 503, m)
            self.assert_error(self.get("/v2/models/%s" % m), 503, m)
        r = self.post("/v2/models/logistic_regression/infer", json=body)
        self.assertEqual(r.status_code, 200, r.text)
        self.assert_outputs_match(decode(r)[1], want)
        self.assertEqual(self.get("/v2/health/ready").status_code, 200)
        # Metrics list the served models only.
        m = e2e.scrape(self.url)
        self.assertEqual(e2e.metric(m, "myelin_inference_request_success_total",
                                    model="logistic_regression"), 1)
        self.assertFalse([k for k in m if ("model", "broken") in k[1]])

    def test_config_toml_is_applied(self):
        self.make_repo(broken=False, bad_config=False)
        self.start()
        loaded = {e["model"]: e for e in self.server.log_events("model_loaded")}
        mlp = loaded["mlp"]
        self.assertEqual(mlp["max_batch_size"], 8)
        self.assertEqual(mlp["max_queue_delay_us"], 100)
        self.assertEqual(mlp["max_queue_size"], 256)
        self.assertEqual(mlp["workers"], 2)
        self.assertEqual(loaded["logistic_regression"]["max_batch_size"], 64)  # the default
        rows = e2e.random_rows("mlp", 9, seed=4)
        r = self.post("/v2/models/mlp/infer", json=infer_json(rows))
        self.assert_error(r, 400, "max batch size", "8")
        want = e2e.predict("mlp", rows[:8])
        r = self.post("/v2/models/mlp/infer", json=infer_json(rows[:8]))
        self.assertEqual(r.status_code, 200, r.text)
        self.assert_outputs_match(decode(r)[1], want)

    def test_bad_config_names_file_and_key(self):
        self.make_repo(broken=False, bad_config=True)
        cases = {
            "badrange": ("workers = 0\n", "workers"),
            "badtype": ('max_queue_size = "many"\n', "max_queue_size"),
            "badsyntax": ("max_batch_size = = 3\n", ":1"),
        }
        for name, (text, _) in cases.items():
            self.add_version(name, 1, source="logistic_regression")
            self.write(os.path.join(self.root, name, "config.toml"), text)
        self.start()
        idx = self.index()
        reason = idx["badcfg"]["reason"]
        self.assertEqual(idx["badcfg"]["state"], "UNAVAILABLE")
        self.assertIn(os.path.join(self.root, "badcfg", "config.toml"), reason)
        self.assertIn("max_batch", reason)
        self.assertIn(":2", reason, "the reason should give the line")
        for name, (_, word) in cases.items():
            self.assertEqual(idx[name]["state"], "UNAVAILABLE", idx[name])
            self.assertIn(os.path.join(name, "config.toml"), idx[name]["reason"])
            self.assertIn(word, idx[name]["reason"])
        self.assert_error(self.post("/v2/models/badcfg/infer",
                                    json=infer_json(e2e.shipped_rows("logistic_regression"))),
                          503, "badcfg")

    def test_memory_budgets_in_config(self):
        """max_model_mb refuses a model whose row needs 8 MiB of workspace;
        max_request_mb refuses a batch workspace over budget; both name the
        figure and the budget."""
        from onnx import TensorProto, helper
        self.make_repo(broken=False, bad_config=False)
        wide = 1 << 20
        graph = helper.make_graph(
            [helper.make_node("Relu", ["X"], ["Y"])], "wide",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", wide])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", wide])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        os.makedirs(os.path.join(self.root, "wide", "1"))
        with open(os.path.join(self.root, "wide", "1", "model.onnx"), "wb") as f:
            f.write(model.SerializeToString())
        self.write(os.path.join(self.root, "wide", "config.toml"), "max_model_mb = 4\n")
        self.add_version("bigbatch", 1, source="mlp")
        self.write(os.path.join(self.root, "bigbatch", "config.toml"),
                   "max_batch_size = 65536\nmax_request_mb = 1\n")
        self.start()
        idx = self.index()
        self.assertEqual(idx["wide"]["state"], "UNAVAILABLE", idx["wide"])
        self.assertIn("max_model_bytes = 4194304", idx["wide"]["reason"])
        self.assertIn("workspace per sample", idx["wide"]["reason"])
        self.assertEqual(idx["bigbatch"]["state"], "UNAVAILABLE", idx["bigbatch"])
        self.assertIn("batch 65536", idx["bigbatch"]["reason"])
        self.assertIn("max_request_bytes = 1048576", idx["bigbatch"]["reason"])
        self.assertEqual(idx["mlp"]["state"], "READY")

    def test_unload_makes_new_requests_503(self):
        self.make_repo(broken=False, bad_config=False)
        self.start()
        body = infer_json(e2e.shipped_rows("mlp"))
        stop = threading.Event()
        seen = []
        unloaded_at = [None]

        def client():
            with requests.Session() as s:
                while not stop.is_set():
                    t = time.monotonic()
                    try:
                        r = s.post(self.url + "/v2/models/mlp/infer", json=body,
                                   timeout=e2e.REQUEST_TIMEOUT)
                        seen.append((t, r.status_code, r.text[:200]))
                    except Exception as e:  # noqa: BLE001
                        seen.append((t, None, repr(e)))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            r = self.post("/v2/repository/models/mlp/unload")
            unloaded_at[0] = time.monotonic()
            self.assertEqual(r.status_code, 200, r.text)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        statuses = {s for _, s, _ in seen}
        self.assertLessEqual(statuses, {200, 503}, [x for x in seen if x[1] not in (200, 503)][:5])
        late = [s for t, s, _ in seen if t > unloaded_at[0]]
        self.assertTrue(late)
        self.assertEqual(set(late), {503})
        self.assert_error(self.post("/v2/models/mlp/infer", json=body), 503, "mlp")
        self.assertEqual(self.get("/v2/models/mlp/ready").status_code, 503)
        idx = self.index()
        self.assertEqual(idx["mlp"]["state"], "UNAVAILABLE")
        self.assertTrue(idx["mlp"].get("reason"))
        # Unloading twice: not loaded.
        self.assert_error(self.post("/v2/repository/models/mlp/unload"), 404, "mlp")
        # The others are untouched.
        r = self.post("/v2/models/logistic_regression/infer",
                      json=infer_json(e2e.shipped_rows("logistic_regression")))
        self.assertEqual(r.status_code, 200, r.text)

    def test_load_at_run_time(self):
        self.make_repo()
        self.start()
        # Fix the broken model and load it.
        shutil.copyfile(e2e.model_path("gradient_boosting"),
                        os.path.join(self.root, "broken", "1", "model.onnx"))
        r = self.post("/v2/repository/models/broken/load")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.index()["broken"]["state"], "READY")
        rows = e2e.sample_rows("gradient_boosting")
        want = e2e.predict("gradient_boosting", rows)
        r = self.post("/v2/models/broken/infer", json=infer_json(rows))
        self.assertEqual(r.status_code, 200, r.text)
        self.assert_outputs_match(decode(r)[1], want)
        # A model added to the directory after start.
        self.add_version("newcomer", 3, source="logistic_regression")
        idx = self.index()
        self.assertEqual(idx["newcomer"]["state"], "UNAVAILABLE")
        r = self.post("/v2/repository/models/newcomer/load")
        self.assertEqual(r.status_code, 200, r.text)
        idx = self.index()
        self.assertEqual(idx["newcomer"]["state"], "READY")
        self.assertEqual(idx["newcomer"]["version"], "3")
        r = self.post("/v2/models/newcomer/versions/3/infer",
                      json=infer_json(e2e.shipped_rows("logistic_regression")))
        self.assertEqual(r.status_code, 200, r.text)
        # Unload and load again.
        self.assertEqual(self.post("/v2/repository/models/newcomer/unload").status_code, 200)
        self.assertEqual(self.get("/v2/models/newcomer/ready").status_code, 503)
        self.assertEqual(self.post("/v2/repository/models/newcomer/load").status_code, 200)
        self.assertEqual(self.get("/v2/models/newcomer/ready").status_code, 200)
        # A failed reload keeps the version already served.
        self.write(os.path.join(self.root, "newcomer", "config.toml"), "bogus_key = 1\n")
        r = self.post("/v2/repository/models/newcomer/load")
        self.assert_error(r, 400, "bogus_key")
        self.assertEqual(self.get("/v2/models/newcomer/ready").status_code, 200)

    def test_reload_to_version_2_under_load_fails_no_request(self):
        self.make_repo(broken=False, bad_config=False)
        self.start()
        rows = np.concatenate([e2e.shipped_rows("mlp"), e2e.random_rows("mlp", 7, seed=8)])
        want = e2e.predict("mlp", rows)
        stop = threading.Event()
        results = []
        versions = []

        def client(i):
            body = infer_json(rows[i:i + 1])
            with requests.Session() as s:
                while not stop.is_set():
                    try:
                        r = s.post(self.url + "/v2/models/mlp/infer", json=body,
                                   timeout=e2e.REQUEST_TIMEOUT)
                    except Exception as e:  # noqa: BLE001
                        results.append("client %d: %r" % (i, e))
                        return
                    if r.status_code != 200:
                        results.append("client %d: %d %s" % (i, r.status_code, r.text))
                        continue
                    doc, outs = decode(r)
                    versions.append(doc["model_version"])
                    if not np.allclose(outs["probabilities"], want["probabilities"][i:i + 1],
                                       rtol=1e-5, atol=1e-7):
                        results.append("client %d: wrong answer" % i)
                    results.append(200)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(rows))]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            self.add_version("mlp", 2)
            r = self.post("/v2/repository/models/mlp/load")
            self.assertEqual(r.status_code, 200, r.text)
            n_at_reload = len(versions)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        bad = [x for x in results if x != 200]
        self.assertEqual(bad[:5], [], "%d of %d requests failed" % (len(bad), len(results)))
        self.assertIn("1", versions[:n_at_reload])
        self.assertEqual(versions[-1], "2")
        self.assertEqual(self.index()["mlp"]["version"], "2")
        doc = self.get("/v2/models/mlp").json()
        self.assertEqual(doc["versions"], ["2"])
        r = self.post("/v2/models/mlp/versions/2/infer", json=infer_json(rows[:1]))
        self.assertEqual(r.status_code, 200, r.text)
        self.assert_error(self.post("/v2/models/mlp/versions/1/infer", json=infer_json(rows[:1])),
                          404, "'1'")


if __name__ == "__main__":
    e2e.main()
