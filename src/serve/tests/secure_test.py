#!/usr/bin/python3
"""End-to-end test of `myelin serve`'s MSC1 front end with the real binary:
a private server with --secure-port 0 and --secure-unix, answered through
`myelin infer --secure` over TCP and the Unix socket; every shipped model's
answer must equal the HTTP front end's. Also the load-generator mode, a
client whose attestation does not match, and the flag rules.

Run:  /usr/bin/python3 secure_test.py --myelin BUILD/bin/myelin \
          --source-dir /work/main [-v]
"""

import json
import math
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import ServerTestCase  # noqa: E402

MODELS = ("logistic_regression", "mlp", "gradient_boosting")
CLIENT_TIMEOUT = 60  # seconds for one `myelin infer` run (ASan builds are slow)


def infer(*args):
    return subprocess.run([e2e.myelin_bin(), "infer"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                          cwd=e2e.source_dir())


class SecureFrontEnd(ServerTestCase):
    SERVER_ARGS = None  # started in setUp, with paths of its own

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory(prefix="myelin_secure_")
        self.addCleanup(self.tmp.cleanup)
        self.sock = os.path.join(self.tmp.name, "serve.sock")
        port_file = os.path.join(self.tmp.name, "secure.port")
        # The secure port file is written before the HTTP one, which start()
        # waits for.
        self.server = self.start_server("--secure-port", "0", "--secure-port-file", port_file,
                                        "--secure-unix", self.sock, "--attestation", "mock")
        with open(port_file) as f:
            self.secure = "127.0.0.1:%d" % int(f.read())

    def model_input(self, model):
        return os.path.join(e2e.source_dir(), "models", model + ".input.json")

    def assert_same_answer(self, secure, http):
        self.assertEqual(sorted(secure), sorted(http))
        for name in http:
            self.assertEqual(secure[name]["dtype"], http[name]["dtype"], name)
            self.assertEqual(secure[name]["shape"], http[name]["shape"], name)
            for a, b in zip(secure[name]["data"], http[name]["data"]):
                self.assertTrue(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12),
                                "%s: %r != %r" % (name, a, b))
            self.assertEqual(len(secure[name]["data"]), len(http[name]["data"]))

    def test_answers_equal_http_over_tcp_and_unix(self):
        for model in MODELS:
            with self.subTest(model=model):
                h = infer("--url", self.url, "--model", model, "--input", self.model_input(model))
                self.assertEqual(h.returncode, 0, h.stderr)
                http = json.loads(h.stdout)
                for target in (self.secure, "unix:" + self.sock):
                    s = infer("--secure", target, "--attestation", "mock", "--model", model,
                              "--input", self.model_input(model))
                    self.assertEqual(s.returncode, 0, s.stderr)
                    self.assert_same_answer(json.loads(s.stdout), http)

    def test_errors_come_back_as_replies(self):
        s = infer("--secure", self.secure, "--attestation", "mock", "--model", "no_such_model",
                  "--input", self.model_input("mlp"))
        self.assertEqual(s.returncode, 1)
        self.assertIn("not_found", s.stderr)

    def test_load_generator(self):
        for target in (self.secure, "unix:" + self.sock):
            s = infer("--secure", target, "--attestation", "mock", "--model",
                      "logistic_regression", "--input", self.model_input("logistic_regression"),
                      "--concurrency", 3, "--requests", 300)
            self.assertEqual(s.returncode, 0, s.stderr)
            self.assertIn("ok 300, failed 0", s.stdout)
            self.assertIn("latency us: p50 ", s.stdout)
        h = infer("--url", self.url, "--model", "logistic_regression", "--input",
                  self.model_input("logistic_regression"), "--concurrency", 2, "--requests", 100)
        self.assertEqual(h.returncode, 0, h.stderr)
        self.assertIn("ok 100, failed 0", h.stdout)

    def test_client_that_cannot_attest_the_server_is_refused(self):
        s = infer("--secure", self.secure, "--attestation", "none", "--model", "mlp",
                  "--input", self.model_input("mlp"))
        self.assertEqual(s.returncode, 1)
        self.assertIn("secure session", s.stderr)


class SecureFlags(ServerTestCase):
    SERVER_ARGS = None

    def test_secure_port_needs_attestation(self):
        r = subprocess.run([e2e.myelin_bin(), "serve", "--http-port", "0", "--secure-port", "0"],
                           capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--attestation", r.stderr)

    def test_infer_secure_needs_attestation(self):
        r = infer("--secure", "127.0.0.1:1", "--model", "mlp", "--input", "-")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--attestation", r.stderr)


if __name__ == "__main__":
    e2e.main()
