#!/usr/bin/python3
"""Tests of myelin_client's HTTP/HTTPS client against a private `myelin serve`.

Run:  MYELIN_BIN=build/release/bin/myelin MYELIN_SOURCE_DIR=. \
          /usr/bin/python3 clients/python/tests/test_http_client.py [-v] [Class.test]

Each class starts its own server on 127.0.0.1 (port 0; HTTPS with a
throwaway self-signed certificate made by the `openssl` CLI) and stops it
with SIGTERM, checking exit code 0. Expected answers come from `myelin
predict` on the same rows. Every request has a timeout.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from myelin_client import (InferenceServerClient, MyelinConnectionError,  # noqa: E402
                           ServerError)

SOURCE = os.environ.get("MYELIN_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "../../.."))
MYELIN = os.environ.get("MYELIN_BIN") or os.path.join(SOURCE, "build/release/bin/myelin")
TIMEOUT = 20
LR_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


def model(name):
    return os.path.join(SOURCE, "models", name + ".onnx")


def predict(name, rows):
    """`myelin predict` -> {output: np.array}: the reference answer."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"X": rows}, f)
    try:
        p = subprocess.run([MYELIN, "predict", "--model", model(name), "--input", f.name],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    if p.returncode != 0:
        raise AssertionError("myelin predict: %s" % p.stderr)
    out = json.loads(p.stdout)
    types = {"f32": np.float32, "i64": np.int64}
    return {k: np.array(v["data"], dtype=types[v["dtype"]]).reshape(v["shape"])
            for k, v in out.items()}


def make_cert(directory, name):
    """A self-signed EC certificate for 127.0.0.1 and localhost."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


class Server:
    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="myelin_pyclient_")
        port_file = os.path.join(self.tmp, "port")
        self.log_path = os.path.join(self.tmp, "log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [MYELIN, "serve", "--host", "127.0.0.1", "--http-port", "0", "--port-file", port_file,
             "--io-threads", "1", "--model", "logistic_regression=" + model("logistic_regression"),
             "--model", "mlp=" + model("mlp")] + list(args),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("myelin serve exited early:\n" + self.text())
            try:
                with open(port_file) as f:
                    t = f.read()
                if t.endswith("\n"):
                    self.port = int(t)
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError("myelin serve wrote no port file:\n" + self.text())

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            rc = "timeout"
        self.log.close()
        text = self.text()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return rc, text


class ClientTests:
    """Shared by the HTTP and HTTPS classes: self.client() gives a client."""

    def test_health_and_metadata(self):
        with self.client() as c:
            self.assertTrue(c.is_server_live())
            self.assertTrue(c.is_server_ready())
            self.assertTrue(c.is_model_ready("logistic_regression"))
            self.assertEqual(c.server_metadata()["name"], "myelin")
            meta = c.model_metadata("logistic_regression")
            self.assertEqual(meta["name"], "logistic_regression")
            self.assertEqual(meta["inputs"][0]["name"], "X")
            self.assertEqual(meta["inputs"][0]["shape"], [-1, 4])
            self.assertEqual(c.model_metadata("logistic_regression", version=1)["versions"], ["1"])

    def test_infer_lists_numpy_and_binary_match_predict(self):
        want = predict("logistic_regression", LR_ROWS)
        with self.client() as c:
            for kind in ("list", "numpy32", "numpy64", "binary"):
                if kind == "list":
                    r = c.infer("logistic_regression", {"X": LR_ROWS}, request_id="r1")
                    self.assertEqual(r.id, "r1")
                elif kind == "binary":
                    r = c.infer("logistic_regression", {"X": np.array(LR_ROWS, np.float32)},
                                binary=True)
                else:
                    dt = np.float32 if kind == "numpy32" else np.float64
                    r = c.infer("logistic_regression", [("X", np.array(LR_ROWS, dt))])
                self.assertEqual(r.model_name, "logistic_regression", kind)
                self.assertEqual(sorted(r.names()), sorted(want), kind)
                for name, w in want.items():
                    got = r.as_numpy(name)
                    self.assertEqual(got.shape, w.shape, kind)
                    if w.dtype == np.int64:
                        self.assertTrue(np.array_equal(got, w), "%s %s" % (kind, name))
                    else:
                        self.assertTrue(np.allclose(got, w, rtol=1e-5, atol=1e-7),
                                        "%s %s: %s vs %s" % (kind, name, got, w))

    def test_outputs_selected_in_order(self):
        with self.client() as c:
            r = c.infer("logistic_regression", {"X": LR_ROWS[:1]}, outputs=["probabilities"])
            self.assertEqual(r.names(), ["probabilities"])
            o = r.output("probabilities")
            self.assertEqual(o["shape"], [1, 3])
            self.assertEqual(len(o["data"]), 3)
            with self.assertRaises(KeyError):
                r.output("label")

    def test_server_errors_carry_status_and_message(self):
        with self.client() as c:
            with self.assertRaises(ServerError) as e:
                c.infer("nope", {"X": LR_ROWS})
            self.assertEqual(e.exception.status, 404)
            self.assertIn("nope", e.exception.message)
            with self.assertRaises(ServerError) as e:
                c.infer("logistic_regression", {"X": [[1.0, 2.0, 3.0]]})
            self.assertEqual(e.exception.status, 400)
            self.assertIn("shape", e.exception.message)
            with self.assertRaises(ServerError) as e:
                c.infer("logistic_regression", {"Y": LR_ROWS})
            self.assertEqual(e.exception.status, 400)
            self.assertIn("Y", e.exception.message)
            # The connection is still good after errors.
            self.assertTrue(c.is_server_live())

    def test_bad_arguments_fail_before_sending(self):
        with self.client() as c:
            with self.assertRaises(ValueError):
                c.infer("logistic_regression", {"X": [[1.0, 2.0], [3.0]]})  # ragged
            with self.assertRaises(ValueError):
                c.infer("logistic_regression", {})
            with self.assertRaises(TypeError):
                c.infer("logistic_regression", {"X": "5.1,3.5"})
            with self.assertRaises(ValueError):
                c.infer("logistic_regression", {"X": LR_ROWS}, timeout_us=0)

    def test_repository_unload_and_load(self):
        with self.client() as c:
            index = {m["name"]: m for m in c.repository_index()}
            self.assertEqual(index["mlp"]["state"], "READY")
            c.unload_model("mlp")
            self.assertFalse(c.is_model_ready("mlp"))
            with self.assertRaises(ServerError) as e:
                c.infer("mlp", {"X": np.zeros((1, 64), np.float32)})
            self.assertEqual(e.exception.status, 503)
            c.load_model("mlp")
            self.assertTrue(c.is_model_ready("mlp"))
            r = c.infer("mlp", {"X": np.zeros((2, 64), np.float32)})
            self.assertEqual(r.as_numpy("probabilities").shape, (2, 10))
            with self.assertRaises(ServerError) as e:
                c.load_model("no_such_model")
            self.assertIn(e.exception.status, (400, 404))


class ServerCase(unittest.TestCase):
    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="myelin_pyclient_certs_")
        cls.cert, cls.key = make_cert(cls.dir, "server")
        cls.server = Server(*[a.format(cert=cls.cert, key=cls.key) for a in cls.ARGS])

    @classmethod
    def tearDownClass(cls):
        rc, text = cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc != 0:
            raise AssertionError("myelin serve exited with %s:\n%s" % (rc, text[-4000:]))


class Http(ServerCase, ClientTests):
    def client(self):
        return InferenceServerClient("http://127.0.0.1:%d" % self.server.port, timeout=TIMEOUT)

    def test_https_options_on_http_are_refused(self):
        with self.assertRaises(ValueError):
            InferenceServerClient("http://127.0.0.1:%d" % self.server.port, cafile=self.cert)
        with self.assertRaises(ValueError):
            InferenceServerClient("ftp://127.0.0.1:1")

    def test_unreachable_server_is_a_connection_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, not listening: refused
            with InferenceServerClient("http://127.0.0.1:%d" % port, timeout=5) as c:
                with self.assertRaises(MyelinConnectionError) as e:
                    c.is_server_live()
                self.assertIn("refused", str(e.exception).lower())


class Https(ServerCase, ClientTests):
    ARGS = ("--tls-cert", "{cert}", "--tls-key", "{key}")

    def client(self):
        return InferenceServerClient("https://127.0.0.1:%d" % self.server.port, timeout=TIMEOUT,
                                     cafile=self.cert)

    def test_tls13_with_alpn(self):
        with self.client() as c:
            self.assertTrue(c.is_server_live())
            self.assertEqual(c.tls_version(), "TLSv1.3")
            self.assertEqual(c.alpn_protocol(), "http/1.1")

    def test_localhost_name_and_insecure(self):
        with InferenceServerClient("https://localhost:%d" % self.server.port, timeout=TIMEOUT,
                                   cafile=self.cert) as c:
            self.assertTrue(c.is_server_live())
        with InferenceServerClient("https://127.0.0.1:%d" % self.server.port, timeout=TIMEOUT,
                                   insecure=True) as c:
            self.assertTrue(c.is_server_live())

    def test_untrusted_certificate_is_a_connection_error(self):
        other, _ = make_cert(self.dir, "other")
        with InferenceServerClient("https://127.0.0.1:%d" % self.server.port, timeout=TIMEOUT,
                                   cafile=other) as c:
            with self.assertRaises(MyelinConnectionError) as e:
                c.is_server_live()
            self.assertIn("CERTIFICATE_VERIFY_FAILED", str(e.exception))
        # The server shrugs it off.
        with self.client() as c:
            self.assertTrue(c.is_server_live())

    def test_plain_http_to_the_https_port_is_told_so(self):
        with InferenceServerClient("http://127.0.0.1:%d" % self.server.port,
                                   timeout=TIMEOUT) as c:
            with self.assertRaises(ServerError) as e:
                c.server_metadata()
            self.assertEqual(e.exception.status, 400)
            self.assertIn("speaks HTTPS", e.exception.message)


if __name__ == "__main__":
    if not os.access(MYELIN, os.X_OK):
        sys.exit("myelin binary not found: %s (set MYELIN_BIN)" % MYELIN)
    unittest.main(verbosity=2)
