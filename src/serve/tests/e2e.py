"""Shared helpers of the `myelin serve` end-to-end tests (src/serve/tests/).

Every test script takes the binary under test and the source tree either
as flags or from the environment:

    /usr/bin/python3 FILE_test.py --myelin build/release/bin/myelin \
        --source-dir /work/main [unittest args, e.g. -v or Class.test_name]
    MYELIN_BIN=... MYELIN_SOURCE_DIR=... /usr/bin/python3 FILE_test.py

Each test starts its own private server (`myelin serve --http-port 0
--port-file F` on 127.0.0.1), talks to it with bounded timeouts, and stops
it with SIGTERM, asserting exit code 0 (under ASan a leak makes that fail).
Nothing here depends on absolute speed: waits are polls with generous
deadlines, so the same scripts pass against an ASan build.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import requests

MODELS = ("gradient_boosting", "logistic_regression", "mlp")
REQUEST_TIMEOUT = 20  # seconds, for every HTTP request a test makes
START_TIMEOUT = 30  # seconds for a server to write its port file
STOP_TIMEOUT = 40  # seconds for a server to exit after SIGTERM

_config = {"myelin": os.environ.get("MYELIN_BIN", ""),
           "source_dir": os.environ.get("MYELIN_SOURCE_DIR", "")}


def main():
    """Parses --myelin / --source-dir, then runs unittest with the rest."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--myelin", default=_config["myelin"])
    p.add_argument("--source-dir", default=_config["source_dir"])
    args, rest = p.parse_known_args()
    if not args.source_dir:
        args.source_dir = os.path.abspath(os.path.join(os.path.dirname(__file__), "../../.."))
    if not args.myelin:
        args.myelin = os.path.join(args.source_dir, "build/release/bin/myelin")
    _config["myelin"] = os.path.abspath(args.myelin)
    _config["source_dir"] = os.path.abspath(args.source_dir)
    if not os.access(_config["myelin"], os.X_OK):
        sys.exit("myelin binary not found or not executable: %s (pass --myelin or MYELIN_BIN)"
                 % _config["myelin"])
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def myelin_bin():
    return _config["myelin"]


def source_dir():
    return _config["source_dir"]


def model_path(name):
    return os.path.join(source_dir(), "models", name + ".onnx")


# --------------------------------------------------------------------------
# Servers


class Server:
    """One private `myelin serve` process."""

    def __init__(self, *args, cwd=None):
        self.tmp = tempfile.mkdtemp(prefix="myelin_e2e_")
        self.port_file = os.path.join(self.tmp, "port")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.args = [myelin_bin(), "serve", "--host", "127.0.0.1", "--http-port", "0",
                     "--port-file", self.port_file] + [str(a) for a in args]
        self.cwd = cwd or source_dir()
        self.proc = None
        self.port = None
        self.returncode = None

    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("myelin serve exited with %s before listening:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                with open(self.port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    return self
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        self.kill()
        raise AssertionError("myelin serve wrote no port file within %ss:\n%s"
                             % (START_TIMEOUT, self.log()))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_events(self, event=None):
        """The server's structured log lines (JSON), optionally one event's."""
        out = []
        for line in self.log().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and (event is None or e.get("event") == event):
                out.append(e)
        return out

    def terminate(self):
        """Sends SIGTERM (the start of a graceful drain)."""
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout=STOP_TIMEOUT):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("myelin serve did not exit within %ss of SIGTERM:\n%s"
                                 % (timeout, self.log()[-4000:]))
        self._log.close()
        return self.returncode

    def stop(self):
        """SIGTERM, then the exit code (the caller asserts it is 0)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
        return self.wait()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """Starts a private server per test (self.server) unless SERVER_ARGS is
    None, and checks it exits 0 on SIGTERM when the test ends."""

    SERVER_ARGS = ()
    maxDiff = None

    def setUp(self):
        self.server = None
        if self.SERVER_ARGS is not None:
            self.server = self.start_server(*self.SERVER_ARGS)

    def start_server(self, *args, cwd=None):
        s = Server(*args, cwd=cwd)
        self.addCleanup(s.cleanup)
        s.start()
        self.addCleanup(self._check_stopped, s)
        return s

    def _check_stopped(self, s):
        rc = s.stop()
        if rc != 0:
            self.fail("myelin serve exited with %s after SIGTERM (expected 0); log tail:\n%s"
                      % (rc, s.log()[-6000:]))

    @property
    def url(self):
        return self.server.url

    # HTTP shortcuts, every one bounded in time.
    def get(self, path, server=None, **kw):
        kw.setdefault("timeout", REQUEST_TIMEOUT)
        return requests.get((server or self.server).url + path, **kw)

    def post(self, path, server=None, **kw):
        kw.setdefault("timeout", REQUEST_TIMEOUT)
        return requests.post((server or self.server).url + path, **kw)

    def assert_error(self, r, status, *words):
        """`r` has `status` and an {"error": "..."} body naming every word."""
        self.assertEqual(r.status_code, status, r.text)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"),
                        r.headers)
        body = r.json()
        self.assertIsInstance(body, dict, r.text)
        self.assertEqual(list(body.keys()), ["error"], r.text)
        self.assertIsInstance(body["error"], str)
        for w in words:
            self.assertIn(w, body["error"], "error message does not name %r" % w)
        return body["error"]

    def assert_outputs_match(self, got, want, rows=None, msg=""):
        """Server outputs {name: np.array} against reference ones; `rows`
        selects reference rows (a slice or index list)."""
        for name, w in want.items():
            self.assertIn(name, got, msg)
            w = w if rows is None else w[rows]
            g = got[name]
            self.assertEqual(tuple(g.shape), tuple(w.shape), "%s %s" % (name, msg))
            if np.issubdtype(w.dtype, np.integer):
                self.assertTrue(np.array_equal(g, w), "%s %s: %s != %s" % (name, msg, g, w))
            else:
                self.assertTrue(np.allclose(g, w, rtol=1e-5, atol=1e-7),
                                "%s %s: %s != %s" % (name, msg, g, w))


# --------------------------------------------------------------------------
# Reference answers: `myelin predict`


def shipped_rows(model):
    with open(os.path.join(source_dir(), "models", model + ".input.json")) as f:
        return np.array(json.load(f)["X"], dtype=np.float64)


def random_rows(model, n, seed):
    """`n` rows on the scale of the model's example rows (deterministic)."""
    base = shipped_rows(model)
    rng = np.random.default_rng(seed)
    scale = np.abs(base).max(axis=0) + 1e-3
    rows = rng.uniform(0.0, 1.0, size=(n, base.shape[1])) * scale
    # Round to values a float32 holds exactly, so that JSON, binary FP32 and
    # `myelin predict` (doubles converted to f32) all see the same inputs.
    return np.round(rows, 4).astype(np.float32).astype(np.float64)


def sample_rows(model, n_random=3, seed=7):
    return np.concatenate([shipped_rows(model), random_rows(model, n_random, seed)])


_DTYPES = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32,
           "FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32,
           "UINT8": np.uint8, "UINT32": np.uint32}


def predict(model, rows):
    """`myelin predict` on `rows` -> {output name: np.array shaped}."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"X": [[float(v) for v in r] for r in rows]}, f)
        path = f.name
    try:
        p = subprocess.run([myelin_bin(), "predict", "--model", model_path(model), "--input", path],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    if p.returncode != 0:
        raise AssertionError("myelin predict failed (%s): %s" % (p.returncode, p.stderr))
    out = json.loads(p.stdout)
    return {k: np.array(v["data"], dtype=_DTYPES[v["dtype"]]).reshape(v["shape"])
            for k, v in out.items()}


def predict_each(model, rows, parallel=2):
    """One `myelin predict` per row -> list of {name: array}."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(parallel) as ex:
        return list(ex.map(lambda r: predict(model, [r]), rows))


# --------------------------------------------------------------------------
# OIP request and response encoding


def infer_json(rows, flat=False, datatype="FP32", outputs=None, binary_outputs=False, id=None):
    rows = np.asarray(rows)
    data = rows.reshape(-1).tolist() if flat else rows.tolist()
    body = {"inputs": [{"name": "X", "shape": list(rows.shape), "datatype": datatype,
                        "data": data}]}
    if outputs is not None:
        body["outputs"] = [{"name": n} for n in outputs]
    if binary_outputs:
        body["parameters"] = {"binary_data_output": True}
    if id is not None:
        body["id"] = id
    return body


def infer_binary(rows, datatype="FP32", outputs=None, binary_outputs=True):
    """A binary-tensor-extension request: (body bytes, headers)."""
    np_type = _DTYPES[datatype]
    rows = np.asarray(rows)
    raw = rows.astype(np_type).tobytes()
    header = {"inputs": [{"name": "X", "shape": list(rows.shape), "datatype": datatype,
                          "parameters": {"binary_data_size": len(raw)}}]}
    if outputs is not None:
        header["outputs"] = [{"name": n, "parameters": {"binary_data": binary_outputs}}
                             for n in outputs]
    elif binary_outputs:
        header["parameters"] = {"binary_data_output": True}
    js = json.dumps(header).encode()
    return js + raw, {"Inference-Header-Content-Length": str(len(js)),
                      "Content-Type": "application/octet-stream"}


def decode_response(status, headers, body):
    """An infer response (JSON or binary extension) -> (json dict, {name: array}).
    `headers` is a case-insensitive mapping (requests) or a dict with
    lowercase keys."""
    get = headers.get
    hlen = get("Inference-Header-Content-Length") or get("inference-header-content-length")
    if hlen is None:
        doc = json.loads(body)
        binary = b""
    else:
        n = int(hlen)
        doc = json.loads(body[:n])
        binary = body[n:]
    outs = {}
    at = 0
    for o in doc.get("outputs", []):
        dt = _DTYPES[o["datatype"]]
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            arr = np.frombuffer(binary[at:at + size], dtype=dt)
            at += size
            if len(arr) * np.dtype(dt).itemsize != size:
                raise AssertionError("binary output %s truncated" % o["name"])
        else:
            arr = np.array(o["data"], dtype=dt)
        outs[o["name"]] = arr.reshape(o["shape"])
    if at != len(binary):
        raise AssertionError("%d binary bytes not claimed by any output" % (len(binary) - at))
    return doc, outs


def decode(r):
    """decode_response for a requests.Response."""
    return decode_response(r.status_code, r.headers, r.content)


# --------------------------------------------------------------------------
# Raw HTTP over sockets, for what requests cannot express


def connect(port, timeout=REQUEST_TIMEOUT):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def abort(sock):
    """Closes with a TCP RST (SO_LINGER 0), as a client that vanished."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class Reader:
    """Reads HTTP/1.1 responses (Content-Length framed) from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def at_eof(self, timeout=REQUEST_TIMEOUT):
        """True once the server closed the connection (EOF or reset), with
        nothing unread; raises if data arrives or on timeout."""
        if self.buf:
            raise AssertionError("unread bytes: %r" % self.buf[:200])
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        if chunk:
            raise AssertionError("expected EOF, got %r" % chunk[:200])
        return True

    def response(self, interim=False, to_head=False):
        """The next response; 1xx responses are skipped unless `interim`.
        `to_head`: the answer to a HEAD request, which has no content."""
        while True:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
            if not version.startswith("HTTP/1."):
                raise AssertionError("bad status line %r" % lines[0])
            headers = {}
            for line in lines[1:]:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            status = int(status)
            if 100 <= status < 200:
                if interim:
                    return RawResponse(status, reason, headers, b"")
                continue
            n = 0 if to_head else int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
            return RawResponse(status, reason, headers, body)


def http_request(method, path, body=b"", headers=None, chunked=False):
    """Bytes of one HTTP/1.1 request."""
    h = {"Host": "127.0.0.1"}
    h.update(headers or {})
    if chunked:
        h["Transfer-Encoding"] = "chunked"
    elif body or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body))
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    if chunked:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c)
                          for c in (body[i:i + 100] for i in range(0, len(body), 100)))
        return head.encode() + chunks + b"0\r\n\r\n"
    return head.encode() + body


def wait_until(pred, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# Prometheus text


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        labels = {}
        if "{" in series:
            name, rest = series.split("{", 1)
            rest = rest.rstrip("}")
            for part in _split_labels(rest):
                k, v = part.split("=", 1)
                labels[k] = json.loads(v)
        else:
            name = series
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def _split_labels(s):
    parts, cur, quoted, esc = [], "", False, False
    for c in s:
        if esc:
            cur += c
            esc = False
        elif c == "\\":
            cur += c
            esc = True
        elif c == '"':
            cur += c
            quoted = not quoted
        elif c == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur:
        parts.append(cur)
    return parts


def metric(metrics, name, **labels):
    """The value of one series; labels given must match (others ignored)."""
    found = [v for (n, ls), v in metrics.items()
             if n == name and all((k, str(v)) in ls for k, v in labels.items())]
    if len(found) != 1:
        raise AssertionError("%d series %s%s" % (len(found), name, labels))
    return found[0]


def scrape(url, session=None):
    r = (session or requests).get(url + "/metrics", timeout=REQUEST_TIMEOUT)
    r.raise_for_status()
    return parse_metrics(r.text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU time a process used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
