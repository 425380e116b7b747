"""The Open Inference Protocol (KServe v2 REST) client, over HTTP or HTTPS.

One keep-alive connection per client; a client is not thread-safe (use one
per thread). Every call is bounded by the client's timeout. Errors: a
ServerError carries the server's status and message; a MyelinConnectionError
says why the server could not be reached or the connection broke; bad
arguments raise ValueError/TypeError before anything is sent.

The wire format is in docs/serving.md ("Endpoints", "Inference", "Binary
tensor data").
"""

import http.client
import json
import ssl
import urllib.parse

from .errors import MyelinConnectionError, MyelinError, ServerError

try:
    import numpy as _np
except ImportError:  # numpy is optional: lists work without it
    _np = None

# OIP datatype <-> numpy dtype (little-endian, as the binary extension sends).
_NP_TO_OIP = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64",
              "uint8": "UINT8", "uint32": "UINT32"}
_OIP_TO_NP = {v: "<" + {"FP32": "f4", "FP64": "f8", "INT32": "i4", "INT64": "i8",
                        "UINT8": "u1", "UINT32": "u4"}[v] for v in _NP_TO_OIP.values()}
_OIP_TO_NP["FP16"] = "<f2"  # binary outputs only (the MSC1 client's results)


def _shape_of(data):
    """The shape of a nested list (rectangular), or ValueError."""
    shape = []
    d = data
    while isinstance(d, (list, tuple)):
        shape.append(len(d))
        if not d:
            break
        d = d[0]
    return shape


def _flatten(data, shape, depth=0, out=None):
    out = [] if out is None else out
    if depth == len(shape):
        if isinstance(data, (list, tuple)):
            raise ValueError("ragged nested list: too deep at depth %d" % depth)
        out.append(data)
        return out
    if not isinstance(data, (list, tuple)) or len(data) != shape[depth]:
        raise ValueError("ragged nested list: expected %d items at depth %d" % (shape[depth], depth))
    for item in data:
        _flatten(item, shape, depth + 1, out)
    return out


class InferResult:
    """An inference answer: `model_name`, `model_version`, `id`, and the
    outputs by name (`output(name)` -> {"datatype", "shape", "data"} with
    flat row-major data; `as_numpy(name)` -> a shaped numpy array)."""

    def __init__(self, doc, binary=b""):
        self.response = doc
        self.model_name = doc.get("model_name")
        self.model_version = doc.get("model_version")
        self.id = doc.get("id")
        self._outputs = {}
        at = 0
        for o in doc.get("outputs", []):
            size = (o.get("parameters") or {}).get("binary_data_size")
            entry = {"datatype": o["datatype"], "shape": list(o["shape"])}
            if size is not None:
                if at + size > len(binary):
                    raise MyelinError("output '%s': %d binary bytes announced, %d left"
                                      % (o["name"], size, len(binary) - at))
                entry["raw"] = binary[at:at + size]
                at += size
            else:
                entry["data"] = o.get("data", [])
            self._outputs[o["name"]] = entry
        if at != len(binary):
            raise MyelinError("%d binary bytes after the last output" % (len(binary) - at))

    def names(self):
        return list(self._outputs)

    def output(self, name):
        o = self._outputs.get(name)
        if o is None:
            raise KeyError("no output '%s' (outputs: %s)" % (name, ", ".join(self._outputs)))
        if "raw" in o:
            if _np is None:
                raise MyelinError("output '%s' is binary: numpy is needed to decode it" % name)
            arr = _np.frombuffer(o["raw"], dtype=_OIP_TO_NP[o["datatype"]])
            return {"datatype": o["datatype"], "shape": o["shape"], "data": arr.tolist()}
        return {"datatype": o["datatype"], "shape": o["shape"], "data": o["data"]}

    def as_numpy(self, name):
        if _np is None:
            raise MyelinError("as_numpy needs numpy (Debian: python3-numpy)")
        o = self._outputs.get(name)
        if o is None:
            raise KeyError("no output '%s' (outputs: %s)" % (name, ", ".join(self._outputs)))
        dtype = _OIP_TO_NP.get(o["datatype"])
        if dtype is None:
            raise MyelinError("output '%s': datatype %s has no numpy type here"
                              % (name, o["datatype"]))
        if "raw" in o:
            arr = _np.frombuffer(o["raw"], dtype=dtype)
        else:  # JSON: non-finite floats arrive as null
            data = [float("nan") if v is None else v for v in o["data"]]
            arr = _np.array(data, dtype=dtype)
        return arr.reshape(o["shape"])


class InferenceServerClient:
    """A client of one `myelin serve` (or any OIP v2 REST server).

    url: "http://HOST:PORT" or "https://HOST:PORT".
    timeout: seconds for connecting and for each answer.
    HTTPS: the certificate is checked against `cafile` (PEM), else the
    system's CAs, and against HOST; `insecure=True` skips both (testing
    only); `ssl_context` replaces all of that with a context of your own.
    """

    def __init__(self, url, timeout=30.0, cafile=None, insecure=False, ssl_context=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("url %r: expected http://HOST:PORT or https://HOST:PORT" % url)
        try:
            port = u.port
        except ValueError as e:
            raise ValueError("url %r: %s" % (url, e)) from None
        self.url = url
        self._host = u.hostname
        self._port = port or (443 if u.scheme == "https" else 80)
        self._https = u.scheme == "https"
        self._timeout = timeout
        self._ctx = None
        if self._https:
            if ssl_context is not None:
                self._ctx = ssl_context
            else:
                ctx = ssl.create_default_context(cafile=cafile) if not insecure else \
                    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                if insecure:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                ctx.set_alpn_protocols(["http/1.1"])
                self._ctx = ctx
        elif cafile or insecure or ssl_context:
            raise ValueError("cafile/insecure/ssl_context apply to https:// URLs only")
        self._conn = None

    # -- connection ---------------------------------------------------------

    def _connection(self):
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port,
                                                         timeout=self._timeout, context=self._ctx)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port,
                                                        timeout=self._timeout)
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def tls_version(self):
        """"TLSv1.3" / "TLSv1.2" once an https connection is open; else None."""
        sock = self._conn.sock if self._conn is not None else None
        return sock.version() if isinstance(sock, ssl.SSLSocket) else None

    def alpn_protocol(self):
        sock = self._conn.sock if self._conn is not None else None
        return sock.selected_alpn_protocol() if isinstance(sock, ssl.SSLSocket) else None

    def _request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes); raises MyelinConnectionError."""
        h = {"Host": "%s:%d" % (self._host, self._port)}
        if body is not None and "Content-Type" not in (headers or {}):
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        # A keep-alive connection the server closed while idle fails on first
        # use: retry that once on a fresh connection (nothing was processed).
        for attempt in (0, 1):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=body, headers=h)
                r = conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, r, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if reused and attempt == 0:
                    continue
                raise MyelinConnectionError("%s %s%s: %s" % (method, self.url, path, e)) from e
            except ssl.SSLError as e:
                self.close()
                raise MyelinConnectionError("%s %s%s: TLS: %s" % (method, self.url, path,
                                                                 e)) from e
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise MyelinConnectionError("%s %s%s: %s" % (method, self.url, path, e)) from e
        raise AssertionError("unreachable")

    def _call(self, method, path, body=None, headers=None, ok=(200,)):
        status, resp, data = self._request(method, path, body, headers)
        if status not in ok:
            raise ServerError(status, self._error_text(data), method, path)
        return status, resp, data

    @staticmethod
    def _error_text(data):
        try:
            doc = json.loads(data)
            if isinstance(doc, dict) and isinstance(doc.get("error"), str):
                return doc["error"]
        except ValueError:
            pass
        return data.decode("utf-8", "replace")[:500]

    @staticmethod
    def _json(data, what):
        try:
            return json.loads(data)
        except ValueError as e:
            raise MyelinError("%s: the answer is not JSON: %s" % (what, e)) from None

    @staticmethod
    def _model_path(name, version):
        if not name:
            raise ValueError("model name is empty")
        p = "/v2/models/" + urllib.parse.quote(name, safe="")
        if version:
            p += "/versions/" + urllib.parse.quote(str(version), safe="")
        return p

    # -- health and metadata ------------------------------------------------

    def is_server_live(self):
        return self._request("GET", "/v2/health/live")[0] == 200

    def is_server_ready(self):
        return self._request("GET", "/v2/health/ready")[0] == 200

    def is_model_ready(self, name, version=None):
        status, _, data = self._request("GET", self._model_path(name, version) + "/ready")
        if status in (200, 503):
            return status == 200
        raise ServerError(status, self._error_text(data), "GET", self._model_path(name, version))

    def server_metadata(self):
        return self._json(self._call("GET", "/v2")[2], "GET /v2")

    def model_metadata(self, name, version=None):
        path = self._model_path(name, version)
        return self._json(self._call("GET", path)[2], "GET " + path)

    # -- repository ---------------------------------------------------------

    def repository_index(self):
        return self._json(self._call("POST", "/v2/repository/index", b"{}")[2],
                          "POST /v2/repository/index")

    def load_model(self, name):
        self._call("POST", "/v2/repository/models/%s/load" % urllib.parse.quote(name, safe=""),
                   b"{}")

    def unload_model(self, name):
        self._call("POST", "/v2/repository/models/%s/unload" % urllib.parse.quote(name, safe=""),
                   b"{}")

    # -- inference ----------------------------------------------------------

    def infer(self, model, inputs, outputs=None, version=None, request_id=None, timeout_us=None,
              datatype=None, binary=False):
        """Runs `model` on `inputs` and returns an InferResult.

        inputs: {name: array} (numpy arrays or nested lists; rows first), or
        a list of (name, array) / (name, array, datatype). Lists default to
        FP32 (or `datatype`); numpy arrays keep their dtype (FP32, FP64,
        INT32, INT64, UINT8, UINT32). outputs: names to return, in order
        (default: all). timeout_us: the request's deadline in the queue.
        binary: send inputs and ask for outputs as raw bytes (Triton's binary
        tensor extension; needs numpy) instead of JSON numbers.
        """
        items = list(inputs.items()) if isinstance(inputs, dict) else list(inputs)
        if not items:
            raise ValueError("no inputs")
        if binary and _np is None:
            raise MyelinError("binary=True needs numpy (Debian: python3-numpy)")
        req = {"inputs": []}
        raw = []
        for item in items:
            if len(item) == 2:
                name, value = item
                dt = datatype
            elif len(item) == 3:
                name, value, dt = item
            else:
                raise ValueError("an input is (name, array) or (name, array, datatype)")
            req["inputs"].append(self._encode_input(str(name), value, dt, binary, raw))
        if outputs is not None:
            req["outputs"] = [{"name": n, "parameters": {"binary_data": True}} if binary
                              else {"name": n} for n in outputs]
        params = {}
        if timeout_us is not None:
            if timeout_us <= 0:
                raise ValueError("timeout_us must be > 0")
            params["timeout"] = int(timeout_us)
        if binary and outputs is None:
            params["binary_data_output"] = True
        if params:
            req["parameters"] = params
        if request_id is not None:
            req["id"] = str(request_id)
        body = json.dumps(req, separators=(",", ":")).encode()
        headers = {}
        if binary:
            headers["Inference-Header-Content-Length"] = str(len(body))
            headers["Content-Type"] = "application/octet-stream"
            body += b"".join(raw)
        path = self._model_path(model, version) + "/infer"
        _, resp, data = self._call("POST", path, body, headers)
        hlen = resp.getheader("Inference-Header-Content-Length")
        if hlen is not None:
            try:
                n = int(hlen)
            except ValueError:
                raise MyelinError("POST %s: bad Inference-Header-Content-Length %r"
                                  % (path, hlen)) from None
            return InferResult(self._json(data[:n], "POST " + path), data[n:])
        return InferResult(self._json(data, "POST " + path))

    @staticmethod
    def _encode_input(name, value, dt, binary, raw):
        if _np is not None and (isinstance(value, _np.ndarray) or binary):
            arr = _np.asarray(value)
            if dt is None:
                if not isinstance(value, _np.ndarray):
                    arr = arr.astype(_np.float32)
                dt = _NP_TO_OIP.get(arr.dtype.name)
                if dt is None:
                    raise TypeError("input '%s': numpy dtype %s has no OIP datatype here"
                                    % (name, arr.dtype))
            elif dt not in _OIP_TO_NP:
                raise ValueError("input '%s': unknown datatype %r" % (name, dt))
            arr = _np.ascontiguousarray(arr, dtype=_OIP_TO_NP[dt])
            entry = {"name": name, "shape": list(arr.shape), "datatype": dt}
            if binary:
                b = arr.tobytes()
                entry["parameters"] = {"binary_data_size": len(b)}
                raw.append(b)
            else:
                entry["data"] = arr.reshape(-1).tolist()
            return entry
        if not isinstance(value, (list, tuple)):
            raise TypeError("input '%s': expected a numpy array or a nested list, got %s"
                            % (name, type(value).__name__))
        dt = dt or "FP32"
        if dt not in _OIP_TO_NP:
            raise ValueError("input '%s': unknown datatype %r" % (name, dt))
        shape = _shape_of(value)
        try:
            flat = _flatten(value, shape)
        except ValueError as e:
            raise ValueError("input '%s': %s" % (name, e)) from None
        return {"name": name, "shape": shape, "datatype": dt, "data": flat}

