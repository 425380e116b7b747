"""The MSC1 secure-channel client of `myelin serve --secure-port/--secure-unix`.

    from myelin_client import SecureClient
    with SecureClient("127.0.0.1:8443", attestation="mock") as c:
        r = c.infer("mlp", {"X": np.zeros((2, 64), np.float32)})
        print(r.as_numpy("probabilities"))

One channel per client over TCP ("HOST:PORT") or a Unix socket
("unix:/path"). The handshake runs in the constructor; then a reader thread
owns the channel's receiving half (replies, Ping, KeyUpdate, Close) and
callers send from any thread: `infer_async` returns a Future, `infer` waits
for it, so many requests can be in flight and their replies, which come in
completion order, are matched by id. Thread-safe.

Every socket read is bounded: the handshake by `handshake_timeout`, the
channel by `idle_timeout` (a Ping goes out after `heartbeat` of sending
nothing, so a live server always has something to answer), each request by
its `timeout`. Any violation by the server ends the channel with the Close
the spec prescribes and a SecureChannelError saying what and where; every
request in flight then fails with it.

The protocol is docs/secure-channel.md (msc1.py) and the envelope
docs/serving.md (envelope.py).
"""

import concurrent.futures
import itertools
import os
import selectors
import socket
import struct
import threading
import time

from .errors import (InferenceError, MyelinConnectionError, ReplyTimeout, SecureChannelError)
from .http import InferResult

try:
    import numpy as _np
except ImportError:  # numpy is optional: (dtype, shape, bytes) inputs work without it
    _np = None

try:
    from . import msc1
    from . import envelope
    _IMPORT_ERROR = None
except ImportError as _e:  # python3-cryptography missing: HTTP still works
    msc1 = envelope = None
    _IMPORT_ERROR = _e

_POLL = 0.1  # seconds between checks of the stop flag, heartbeat and deadlines


def _need_crypto():
    if _IMPORT_ERROR is not None:
        raise ImportError("the MSC1 client needs the cryptography module (Debian: "
                          "python3-cryptography): %s" % _IMPORT_ERROR) from _IMPORT_ERROR


def parse_address(address):
    """"unix:/path" -> (AF_UNIX, path); "HOST:PORT", "[v6]:PORT" or
    (host, port) -> (AF_INET/AF_INET6 via getaddrinfo, (host, port))."""
    if isinstance(address, tuple):
        return "tcp", (address[0], int(address[1]))
    if not isinstance(address, str) or not address:
        raise ValueError("address %r: expected 'HOST:PORT' or 'unix:/path'" % (address,))
    if address.startswith("unix:"):
        if len(address) == 5:
            raise ValueError("address %r: empty Unix socket path" % address)
        return "unix", address[5:]
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("address %r: expected 'HOST:PORT' (port 1..65535) or 'unix:/path'"
                         % address)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return "tcp", (host, int(port))


class SecureClient:
    """A client of one MSC1 channel to `myelin serve`.

    address: "HOST:PORT", (host, port) or "unix:/path".
    attestation: "mock" (mode responder: the server's mock evidence must
    verify under `mock_key`, bind this handshake, and meet `policy`,
    default {"code": [b"myelin-serve"]}) or "none" (mode none, development).
    timeout: seconds to connect, to write, and the default wait per request.
    max_record: the largest record plaintext this side accepts (announced in
    Hello); max_message: the largest reply message it reassembles.
    rekey_records / rekey_bytes: this side's KeyUpdate thresholds.
    """

    def __init__(self, address, attestation="mock", timeout=30.0, handshake_timeout=10.0,
                 mock_key=None, policy=None, suites=None, max_record=65536,
                 max_message=1 << 30, rekey_records=1 << 20, rekey_bytes=1 << 34,
                 heartbeat=15.0, idle_timeout=60.0):
        _need_crypto()
        if attestation not in ("mock", "none"):
            raise ValueError("attestation %r: expected 'mock' or 'none'" % (attestation,))
        if attestation == "none" and (mock_key is not None or policy is not None):
            raise ValueError("mock_key and policy apply to attestation='mock' only")
        if not 0 < heartbeat < idle_timeout:
            raise ValueError("need 0 < heartbeat < idle_timeout")
        if rekey_records < 1 or rekey_bytes < 1:
            raise ValueError("rekey_records and rekey_bytes must be >= 1")
        self.address = address
        self._kind, self._addr = parse_address(address)
        self._timeout = timeout
        self._heartbeat, self._idle_timeout = heartbeat, idle_timeout
        key = msc1.MOCK_KEY if mock_key is None else bytes(mock_key)
        pol = {"code": [b"myelin-serve"]} if policy is None else dict(policy)

        def verify(evidence, report_data, mode):
            identity, measurements = msc1.verify_mock_evidence(key, evidence, report_data)
            msc1.check_policy(pol, measurements)
            return identity, measurements

        mode = msc1.MODE_RESPONDER if attestation == "mock" else msc1.MODE_NONE
        initiator = msc1.Initiator(
            suites=suites or (msc1.SUITE_CHACHA20_POLY1305, msc1.SUITE_AES_256_GCM),
            min_mode=mode, max_mode=mode, max_record=max_record, verifier=verify)

        self._buf = bytearray()
        self._send_lock = threading.RLock()  # _fail runs under it too
        self._pending_lock = threading.Lock()
        self._pending = {}  # id -> (Future, model, version)
        self._abandoned = set()  # ids whose caller stopped waiting
        self._ids = itertools.count(1)
        self._failure = None  # the SecureChannelError that ended the channel
        self._close_sent = False
        self.peer_close_code = None  # the server's Close, once received
        self._stop = threading.Event()
        self._sock = self._connect()
        self._sel = selectors.DefaultSelector()  # used by one thread at a time
        self._sel.register(self._sock, selectors.EVENT_READ)
        try:
            self._handshake(initiator, handshake_timeout)
        except BaseException:
            self._sel.close()
            self._sock.close()
            raise
        self._recv.max_message = max_message
        self._send.rekey_records, self._send.rekey_bytes = rekey_records, rekey_bytes
        self._last_send = self._last_recv = time.monotonic()
        self._reader = threading.Thread(target=self._run, name="msc1-reader", daemon=True)
        self._reader.start()

    # -- connection and handshake -------------------------------------------

    def _connect(self):
        try:
            if self._kind == "unix":
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(self._timeout)
                try:
                    s.connect(self._addr)
                except BaseException:
                    s.close()
                    raise
            else:
                s = socket.create_connection(self._addr, timeout=self._timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            raise MyelinConnectionError("MSC1 %s: connect: %s" % (self.address, e)) from e
        return s

    def _read(self, n, deadline, what, idle=None, boundary=False):
        """Exactly n bytes (taken from self._buf), or raises. Returns None
        on end of stream before the first byte when `boundary` (a record
        boundary in the reader thread). Bounded by `deadline`, or by `idle`
        (called every poll; it raises when the channel has been idle too
        long)."""
        sel = self._sel
        while len(self._buf) < n:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise _Timeout(what)
            if idle is not None:
                idle()
            if self._stop.is_set():
                raise _Stopped()
            wait = _POLL if deadline is None else min(_POLL, deadline - now)
            if not sel.select(wait):
                continue
            try:
                data = self._sock.recv(max(65536, n - len(self._buf)))
            except (BlockingIOError, InterruptedError, socket.timeout):
                continue
            except OSError as e:
                raise SecureChannelError("MSC1 %s: reading %s: %s" % (self.address, what,
                                                                     e)) from e
            if not data:
                if boundary and not self._buf:
                    return None
                raise _EndOfStream(what, len(self._buf), n)
            self._buf += data
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _handshake(self, initiator, handshake_timeout):
        deadline = time.monotonic() + handshake_timeout
        where = "MSC1 %s: handshake" % self.address
        try:
            self._sock.sendall(initiator.hello())
            raw = self._read(16, deadline, "the Response header (message 2)")
            hdr = msc1.Header(raw)
            initiator.check_response_header(hdr)
            body = self._read(hdr.length, deadline, "the Response body (message 2)")
            msg3, result = initiator.finish(raw + body)
            self._sock.sendall(msg3)
        except msc1.HandshakeFailed as e:
            if e.close_frame is not None:
                try:
                    self._sock.sendall(e.close_frame)
                except OSError:
                    pass
            raise SecureChannelError("%s failed: %s" % (where, e), e.close_code) from None
        except msc1.ProtocolViolation as e:
            raise SecureChannelError("%s failed: %s" % (where, e)) from None
        except _Timeout as e:
            raise SecureChannelError("%s: no %s within %.1f s" % (where, e.what,
                                                                   handshake_timeout)) from None
        except _EndOfStream as e:
            raise SecureChannelError("%s: the server ended the stream inside %s (%d of %d "
                                     "bytes): it refused the handshake or is not an MSC1 "
                                     "server" % (where, e.what, e.got, e.need)) from None
        except OSError as e:
            raise SecureChannelError("%s: %s" % (where, e)) from e
        self.suite = msc1.SUITE_NAMES[result.suite]
        self.mode = msc1.MODE_NAMES[result.mode]
        self.session_id = result.session_id
        self.peer_identity = result.identity
        self.peer_measurements = result.measurements
        self.peer_max_record = result.peer_max_record
        self._send, self._recv = result.send, result.recv

    # -- sending ------------------------------------------------------------

    def _write(self, make):
        """Seals with make(sender) and writes, under the send lock."""
        with self._send_lock:
            if self._failure is not None:
                raise self._failure
            if self._close_sent:
                raise SecureChannelError("MSC1 %s: the channel is closed" % self.address)
            data = make(self._send)
            try:
                self._sock.sendall(data)
            except OSError as e:
                err = SecureChannelError("MSC1 %s: writing: %s" % (self.address, e))
                self._fail(err)
                raise err from e
            self._last_send = time.monotonic()

    def _send_close(self, code):
        """Sends our Close (once) and shuts the write half."""
        with self._send_lock:
            if self._close_sent:
                return
            self._close_sent = True
            try:
                self._sock.sendall(self._send.close(code))
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the peer is gone; there is nobody left to tell

    @property
    def key_updates_sent(self):
        return self._send.key_updates

    @property
    def key_updates_received(self):
        return self._recv.key_updates

    # -- inference ----------------------------------------------------------

    def infer_async(self, model, inputs, outputs=None, version=None, timeout_us=None,
                    request_id=None):
        """Sends one request; returns a concurrent.futures.Future of its
        InferResult (or InferenceError / SecureChannelError).

        inputs: {name: numpy array | (dtype, shape, bytes)} (dtype: "f32",
        "FP32", a code 1..8 or a numpy dtype; bytes little-endian,
        row-major); nested lists become FP32 arrays (needs numpy). outputs:
        names to return, in order (default: all). timeout_us: the server-side
        deadline (0/None: the model's default). request_id: 1..2^64-1,
        unique among requests in flight (default: the next of a counter)."""
        if not isinstance(inputs, dict):
            raise TypeError("inputs: expected a dict name -> array")
        tensors = [self._tensor(str(name), value) for name, value in inputs.items()]
        if timeout_us is not None and timeout_us <= 0:
            raise ValueError("timeout_us must be > 0")
        outputs = None if outputs is None else [str(o) for o in outputs]
        if outputs is not None and len(set(outputs)) != len(outputs):
            # The server would return such an output twice; results are by name.
            raise ValueError("outputs %r: a name is given twice" % (list(outputs),))
        future = concurrent.futures.Future()
        with self._pending_lock:
            if request_id is None:
                rid = next(self._ids)
                while rid in self._pending:
                    rid = next(self._ids)
            else:
                rid = int(request_id)
                if not 0 < rid < 1 << 64:
                    raise ValueError("request_id %d outside [1, 2^64-1] (0 is the id of "
                                     "replies to unreadable requests)" % rid)
                if rid in self._pending:
                    raise ValueError("request_id %d is already in flight" % rid)
            message = envelope.encode_request(rid, model, tensors, outputs or (),
                                              "" if version is None else str(version),
                                              int(timeout_us or 0))
            self._abandoned.discard(rid)
            self._pending[rid] = (future, model, "" if version is None else str(version))
        try:
            self._write(lambda s: s.message(message))
        except BaseException:
            with self._pending_lock:
                self._pending.pop(rid, None)
            raise
        future.request_id = rid
        return future

    def infer(self, model, inputs, outputs=None, version=None, timeout_us=None,
              request_id=None, timeout=None):
        """Runs `model` on `inputs` and returns an InferResult; raises
        InferenceError with the server's code and message, ReplyTimeout
        after `timeout` seconds (default: the client's), or
        SecureChannelError. Arguments as for infer_async."""
        f = self.infer_async(model, inputs, outputs, version, timeout_us, request_id)
        return self.result(f, timeout)

    def result(self, future, timeout=None):
        """Waits for a Future from infer_async (bounded, default the client's
        timeout) and returns its InferResult or raises its error."""
        wait = self._timeout if timeout is None else timeout
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            with self._pending_lock:
                if self._pending.pop(future.request_id, None) is not None:
                    self._abandoned.add(future.request_id)
            if future.done():  # answered in the meantime
                return future.result(0)
            raise ReplyTimeout("MSC1 %s: no reply to request %d within %.3f s"
                               % (self.address, future.request_id, wait)) from None

    @staticmethod
    def _tensor(name, value):
        if isinstance(value, tuple) and len(value) == 3 and isinstance(
                value[2], (bytes, bytearray, memoryview)):
            dtype, shape, data = value
            try:
                return (name, envelope.dtype_code(dtype), list(shape), data)
            except ValueError as e:
                raise ValueError("input '%s': %s" % (name, e)) from None
        if _np is None:
            raise TypeError("input '%s': without numpy, give (dtype, shape, bytes)" % name)
        if isinstance(value, (list, tuple)):
            value = _np.asarray(value, dtype=_np.float32)
        if not isinstance(value, _np.ndarray):
            raise TypeError("input '%s': expected a numpy array, a nested list or "
                            "(dtype, shape, bytes), got %s" % (name, type(value).__name__))
        try:
            code = envelope.dtype_code(value.dtype)
        except ValueError:
            raise TypeError("input '%s': numpy dtype %s has no MSC1 dtype" % (name, value.dtype)
                            ) from None
        arr = _np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        return (name, code, list(arr.shape), arr.tobytes())

    # -- the reader thread --------------------------------------------------

    def _idle(self):
        now = time.monotonic()
        if now - self._last_recv >= self._idle_timeout:
            raise _Idle()
        if now - self._last_send >= self._heartbeat and not self._close_sent:
            try:
                self._write(lambda s: s.ping(os.urandom(8)))
            except SecureChannelError:
                pass  # the failure is recorded; the read loop ends on it

    def _run(self):
        try:
            self._loop()
        except BaseException as e:  # never let the thread die silently
            self._fail(SecureChannelError("MSC1 %s: reader failed: %r" % (self.address, e)))
        finally:
            self._stop.set()

    def _loop(self):
        recv = self._recv
        while True:
            try:
                raw = self._read(16, None, "a record header", idle=self._idle, boundary=True)
                if raw is None:  # end of stream at a record boundary
                    if not self._close_sent:
                        self._fail(SecureChannelError(
                            "MSC1 %s: the server ended the stream without a Close "
                            "(truncation)" % self.address))
                    return
                if self._close_sent:
                    self._after_close(raw)
                    continue
                hdr = recv.check_header(raw)
                body = self._read(hdr.length, time.monotonic() + self._idle_timeout,
                                  "the body of %s record seq %d" % (hdr.name, hdr.seq),
                                  idle=self._idle)
                self._last_recv = time.monotonic()
                event = recv.open(hdr, body)
            except msc1.ProtocolViolation as e:
                if self._close_sent:
                    return
                self._end(e.close_code, self._error("%s; sent Close(%s)" % (
                    e, msc1.close_code_name(e.close_code)), e.close_code))
                return
            except _Idle:
                self._end(msc1.TIMEOUT, self._error(
                    "no record from the server for %.1f s; sent Close(timeout)"
                    % self._idle_timeout, msc1.TIMEOUT))
                return
            except _EndOfStream as e:
                if not self._close_sent:
                    self._fail(SecureChannelError(
                        "MSC1 %s: the server ended the stream inside %s (%d of %d bytes; "
                        "truncation)" % (self.address, e.what, e.got, e.need)))
                return
            except _Timeout as e:
                if not self._close_sent:
                    self._end(msc1.TIMEOUT, self._error(
                        "%s did not arrive in time; sent Close(timeout)" % e.what, msc1.TIMEOUT))
                return
            except (_Stopped, SecureChannelError) as e:
                if isinstance(e, SecureChannelError) and not self._close_sent:
                    self._fail(e)
                return
            if event is None:
                continue
            kind, value = event
            if kind == "message":
                try:
                    self._deliver(value)
                except _Stopped:
                    return
            elif kind == "ping":
                try:
                    self._write(lambda s: s.pong(value))
                except SecureChannelError:
                    return
            elif kind == "close":
                self.peer_close_code = value
                if value == msc1.HANDSHAKE_FAILURE and recv.expect == 1:
                    text = "the server rejected the handshake"
                else:
                    text = "the server closed the channel (Close %s)" % msc1.close_code_name(
                        value)
                self._end(msc1.NORMAL, self._error(text, value))  # the answer (5.5)
                return
            # a Pong answers our heartbeat: receiving it already reset the idle clock

    def _after_close(self, raw):
        """A record after our Close: read and discarded (section 5.5), but
        opened while it still can be, so the server's Close answer is seen
        (peer_close_code)."""
        hdr = msc1.Header(raw)
        body = self._read(hdr.length, time.monotonic() + 1.0, "a record after our Close")
        try:
            event = self._recv.open(self._recv.check_header(raw), body)
        except msc1.ProtocolViolation:
            return
        if event is not None and event[0] == "close" and self.peer_close_code is None:
            self.peer_close_code = event[1]

    def _deliver(self, message):
        try:
            reply = envelope.decode_reply(message)
        except envelope.EnvelopeError as e:
            # An authentic but undecodable reply: fail its request when the
            # id is readable and in flight, else the channel cannot be trusted.
            rid = struct.unpack_from("<Q", message, 6)[0] if (
                len(message) >= 14 and message[:4] == b"MSRP") else None
            with self._pending_lock:
                entry = self._pending.pop(rid, None) if rid else None
            if entry is not None:
                entry[0].set_exception(e)
                return
            self._end(msc1.PROTOCOL_ERROR, self._error("%s; sent Close(protocol_error)" % e,
                                                       msc1.PROTOCOL_ERROR))
            raise _Stopped() from None
        with self._pending_lock:
            entry = self._pending.pop(reply.id, None)
            late = entry is None and reply.id in self._abandoned
            self._abandoned.discard(reply.id)
        if entry is None:
            if late:
                return
            self._end(msc1.PROTOCOL_ERROR, self._error(
                "reply for request id %d, which no request in flight has; sent "
                "Close(protocol_error)" % reply.id, msc1.PROTOCOL_ERROR))
            raise _Stopped()
        future, model, version = entry
        if reply.code != 0:
            future.set_exception(InferenceError(reply.code, reply.code_name, reply.message,
                                                reply.id, model))
            return
        outputs, blobs = [], []
        for name, code, shape, data in reply.tensors:
            outputs.append({"name": name, "datatype": envelope.DTYPES[code][1], "shape": shape,
                            "parameters": {"binary_data_size": len(data)}})
            blobs.append(data)
        future.set_result(InferResult({"model_name": model, "model_version": version,
                                       "id": reply.id, "outputs": outputs}, b"".join(blobs)))

    def _error(self, text, close_code=None):
        return SecureChannelError("MSC1 %s: %s" % (self.address, text), close_code)

    def _end(self, code, err):
        """Fails the channel with `err`, then sends Close(code): in this order
        and under the send lock, so a concurrent sender sees the failure, not
        a bare closed channel."""
        with self._send_lock:
            self._fail(err)
            self._send_close(code)

    def _fail(self, err):
        """Ends the channel with `err`: every request in flight fails with it."""
        with self._send_lock:
            if self._failure is None:
                self._failure = err
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for future, _, _ in pending.values():
            if not future.done():
                future.set_exception(err)

    # -- closing ------------------------------------------------------------

    def close(self, code=0, wait=1.0):
        """Sends Close(code) (normal by default), waits up to `wait` seconds
        for the server's end of stream, and closes the socket. Requests still
        in flight fail. Idempotent."""
        if self._sock is None:
            return
        if self._failure is None:
            self._send_close(code)
        self._reader.join(wait)
        self._stop.set()
        self._reader.join(2 * _POLL + 1.0)
        self._fail(SecureChannelError("MSC1 %s: the client closed the channel" % self.address,
                                      code))
        self._sel.close()
        self._sock.close()
        self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        sock, stop = getattr(self, "_sock", None), getattr(self, "_stop", None)
        if sock is not None and stop is not None:
            stop.set()
            self._sel.close()
            sock.close()


class _Timeout(Exception):
    def __init__(self, what):
        super().__init__(what)
        self.what = what


class _EndOfStream(Exception):
    def __init__(self, what, got, need):
        super().__init__(what)
        self.what, self.got, self.need = what, got, need


class _Stopped(Exception):
    pass


class _Idle(Exception):
    pass
