#!/usr/bin/python3
"""End-to-end tests of `myelin serve --tls-cert/--tls-key` (HTTPS) with the
real binary and independent clients: curl (TLS 1.3 and 1.2, ALPN, HTTP/2
offered and declined to http/1.1), Python's requests, `myelin infer --url
https://` with --cacert and --insecure, and the start-up errors of bad
certificate and key files.

Run:  /usr/bin/python3 https_test.py --myelin BUILD/bin/myelin --source-dir . [-v]
The certificates are throwaway ones the `openssl` CLI makes per run.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import requests

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import ServerTestCase, decode, infer_json  # noqa: E402

LR = "/v2/models/logistic_regression"


def make_cert(directory, name):
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


class Certs:
    dir = None

    @classmethod
    def get(cls):
        if cls.dir is None:
            cls.dir = tempfile.mkdtemp(prefix="myelin_https_e2e_")
            cls.cert, cls.key = make_cert(cls.dir, "server")
            cls.other_cert, cls.other_key = make_cert(cls.dir, "other")
        return cls


class Https(ServerTestCase):
    SERVER_ARGS = None  # started in setUp with the certificate

    def setUp(self):
        super().setUp()
        c = Certs.get()
        self.cert = c.cert
        self.server = self.start_server("--tls-cert", c.cert, "--tls-key", c.key)
        self.https = "https://127.0.0.1:%d" % self.server.port

    def test_curl_tls13_and_tls12_with_alpn(self):
        body = json.dumps(infer_json([[5.1, 3.5, 1.4, 0.2]])).encode()
        for flags, version in ((["--tlsv1.3"], "TLSv1.3"), (["--tlsv1.2", "--tls-max", "1.2"],
                                                            "TLSv1.2")):
            # curl offers h2 and http/1.1: the server picks http/1.1.
            p = subprocess.run(["curl", "-sS", "-v", "--max-time", "20", "--cacert", self.cert,
                                "--http2"] + flags + ["--data-binary", "@-",
                                                      self.https + LR + "/infer"],
                               input=body, capture_output=True, timeout=30)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 0, err)
            self.assertIn("SSL connection using " + version, err)
            self.assertIn("ALPN: server accepted http/1.1", err)
            doc = json.loads(p.stdout)
            self.assertEqual(doc["model_name"], "logistic_regression")

    def test_requests_keep_alive_json_and_binary_match_predict(self):
        rows = e2e.sample_rows("logistic_regression")
        want = e2e.predict("logistic_regression", rows)
        with requests.Session() as s:
            # verify= on each call: a CA bundle named in the environment
            # (REQUESTS_CA_BUNDLE) would override Session.verify.
            for _ in range(3):  # one connection, several requests
                r = s.post(self.https + LR + "/infer", json=infer_json(rows), verify=self.cert,
                           timeout=e2e.REQUEST_TIMEOUT)
                self.assertEqual(r.status_code, 200, r.text)
                self.assert_outputs_match(decode(r)[1], want)
            body, headers = e2e.infer_binary(rows)
            r = s.post(self.https + LR + "/infer", data=body, headers=headers, verify=self.cert,
                       timeout=e2e.REQUEST_TIMEOUT)
            self.assertEqual(r.status_code, 200, r.text)
            self.assert_outputs_match(decode(r)[1], want)
            m = e2e.parse_metrics(s.get(self.https + "/metrics", verify=self.cert,
                                        timeout=e2e.REQUEST_TIMEOUT).text)
            self.assertEqual(e2e.metric(m, "myelin_tls_handshakes_total"), 1)
            self.assertEqual(e2e.metric(m, "myelin_http_connections_accepted_total"), 1)

    def test_myelin_infer_over_https(self):
        inp = os.path.join(e2e.source_dir(), "models", "logistic_regression.input.json")
        want = e2e.predict("logistic_regression", e2e.shipped_rows("logistic_regression"))
        for extra in (["--cacert", self.cert], ["--insecure"]):
            p = subprocess.run([e2e.myelin_bin(), "infer", "--url", self.https, "--model",
                                "logistic_regression", "--input", inp] + extra,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = json.loads(p.stdout)
            self.assertTrue(np.array_equal(np.array(out["label"]["data"]),
                                           want["label"].reshape(-1)))
        # Distrusted: a CA that did not sign the server's certificate.
        p = subprocess.run([e2e.myelin_bin(), "infer", "--url", self.https, "--model",
                            "logistic_regression", "--input", inp, "--cacert",
                            Certs.get().other_cert], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("certificate verify failed", p.stderr)

    def test_plain_http_and_junk_do_not_stop_the_server(self):
        r = requests.get(self.server.url + "/v2/health/ready", timeout=e2e.REQUEST_TIMEOUT)
        self.assertEqual(r.status_code, 400)
        self.assertIn("speaks HTTPS", r.json()["error"])
        s = e2e.connect(self.server.port)
        s.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 100)
        got = b""
        while True:  # at most a fatal alert record, then the close
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:  # closed with our bytes unread: as closed
                break
            if not chunk:
                break
            got += chunk
        s.close()
        self.assertTrue(got == b"" or (got[0] == 0x15 and len(got) == 7), got)
        e2e.abort(e2e.connect(self.server.port))
        r = requests.get(self.https + "/v2/health/ready", verify=self.cert,
                         timeout=e2e.REQUEST_TIMEOUT)
        self.assertEqual(r.status_code, 200)
        self.assertTrue(any(e.get("event") == "tls_failed" for e in self.server.log_events()))


class StartupErrors(ServerTestCase):
    SERVER_ARGS = None

    def run_serve(self, *args):
        return subprocess.run([e2e.myelin_bin(), "serve", "--http-port", "0"] + list(args),
                              capture_output=True, text=True, timeout=60, cwd=e2e.source_dir())

    def test_bad_files_exit_2_naming_the_file(self):
        c = Certs.get()
        missing = os.path.join(c.dir, "missing.pem")
        cases = [
            ((["--tls-cert", missing, "--tls-key", c.key]), missing),
            ((["--tls-cert", c.cert, "--tls-key", c.other_key]), "does not match the certificate"),
            ((["--tls-cert", c.key, "--tls-key", c.key]), "not a PEM certificate"),
            ((["--tls-cert", c.cert]), "--tls-key"),
        ]
        for args, words in cases:
            p = self.run_serve(*args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(words, p.stderr, args)


def tearDownModule():
    if Certs.dir:
        shutil.rmtree(Certs.dir, ignore_errors=True)


if __name__ == "__main__":
    e2e.main()
