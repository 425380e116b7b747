#!/usr/bin/python3
"""Unit tests of the MSC1 client: framing on canned bytes, the record layer,
the mock verifier, and the client against a scripted responder on loopback
(misbehaviour a real server never shows: wrong evidence binding, replies out
of order, server KeyUpdate and Ping, tampered or unsolicited records).

Run:  /usr/bin/python3 clients/python/tests/test_msc1_unit.py [-v]

Byte layouts are docs/secure-channel.md (sections 1, 5, 6, 8, 9) and
docs/serving.md (the envelope example); section numbers refer to them.
"""

import hashlib
import hmac
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from myelin_client import InferenceError, SecureChannelError, SecureClient  # noqa: E402
from myelin_client import envelope, msc1  # noqa: E402
from myelin_client.envelope import EnvelopeError  # noqa: E402

WAIT = 10  # seconds: the bound of every wait in these tests


def hmac256(k, x):
    return hmac.new(k, x, hashlib.sha256).digest()


def expand32(prk, label, n):
    """RFC 5869 Expand for L <= 32 written out: T(1) = HMAC(prk, info || 01)."""
    return hmac256(prk, b"msc1 " + label + b"\x00\x01")[:n]


class Framing(unittest.TestCase):
    def test_request_matches_the_documented_example(self):
        # docs/serving.md, "The inference envelope": 78 bytes.
        want = bytes.fromhex(
            "4d5352510100" "0700000000000000" "0000000000000000" "06006c696e656172" "0000"
            "0100010079" "01000000" "0100580102" "0100000000000000" "0200000000000000"
            "0800000000000000" "0000803f00000040")
        got = envelope.encode_request(7, "linear", [("X", "f32", [1, 2],
                                                     struct.pack("<2f", 1.0, 2.0))], ["y"])
        self.assertEqual(got, want)
        self.assertEqual(len(got), 78)  # the document said 77 until this test

    def test_hello_matches_section_9(self):
        hello = msc1.Initiator(suites=(1, 2), min_mode=1, max_mode=1).hello()
        self.assertEqual(len(hello), 93)
        self.assertEqual(hello[:16], bytes.fromhex("01000000 0000004d 0000000000000000"
                                                   .replace(" ", "")))
        self.assertEqual(hello[16:23], bytes.fromhex("00010200010002"))
        self.assertEqual(hello[23:29], bytes.fromhex("010100010000"))

    def test_expand_info_and_nonce(self):
        prk = bytes(range(32))
        # Section 1: Expand(prk, "r hs key", "", 32) uses the 14-byte info
        # 6d 73 63 31 20 72 20 68 73 20 6b 65 79 00.
        info = bytes.fromhex("6d736331207220687320 6b657900".replace(" ", ""))
        self.assertEqual(msc1.expand(prk, "r hs key", 32), hmac256(prk, info + b"\x01"))
        self.assertEqual(msc1.expand(prk, "r hs iv", 12), expand32(prk, b"r hs iv", 12))
        iv = bytes.fromhex("000102030405060708090a0b")
        self.assertEqual(msc1.record_nonce(iv, 0x0102), bytes.fromhex("00010203040506070809"
                                                                      "0b09"))

    def test_reply_decoding(self):
        ok = b"MSRP\x01\x00" + struct.pack("<Q", 9) + envelope.encode_tensors(
            [("y", "i64", [2], struct.pack("<2q", 3, -4))])
        r = envelope.decode_reply(ok)
        self.assertEqual((r.id, r.code, r.tensors[0][0], r.tensors[0][1], r.tensors[0][2]),
                         (9, 0, "y", 6, [2]))
        self.assertEqual(bytes(r.tensors[0][3]), struct.pack("<2q", 3, -4))
        err = b"MSRP\x01\x02" + struct.pack("<QI", 5, 4) + b"gone"
        r = envelope.decode_reply(err)
        self.assertEqual((r.id, r.code_name, r.message), (5, "not_found", "gone"))

    def test_malformed_replies_name_field_and_offset(self):
        head = b"MSRP\x01\x00" + struct.pack("<Q", 1)
        t = struct.pack("<I", 1) + struct.pack("<H", 1) + b"y"
        cases = {
            b"MSRQ\x01\x00" + bytes(8) + bytes(4): "magic",
            b"MSRP\x02\x00" + bytes(8) + bytes(4): "version at byte 4",
            b"MSRP\x01\x06" + bytes(8): "code at byte 5: 6",
            b"MSRP\x01\x01" + struct.pack("<QI", 1, 5) + b"gone": "message_len at byte 14",
            b"MSRP\x01\x01" + struct.pack("<QI", 1, 2) + b"\xc0\xaf": "not valid UTF-8",
            head + t + bytes([9, 0]) + bytes(8): "dtype at byte 21: unknown dtype 9",
            head + t + bytes([1, 9]) + bytes(80): "rank at byte 22: 9 above 8",
            head + t + bytes([1, 1]) + struct.pack("<QQ", 2, 4) + bytes(4):
                "data_len at byte 31: 4, shape [2] of f32 needs 8",
            head + t + bytes([1, 1]) + struct.pack("<QQ", 1 << 63, 0):
                "dim 0 at byte 23",
            head + t + bytes([7, 0]) + struct.pack("<Q", 1) + b"\x05" + b"!":
                "1 bytes left over at byte 32",
            head + struct.pack("<I", 1000) + bytes(20): "n_tensors 1000",
            head + struct.pack("<IH", 1, 2) + b"\xc0\x80" + bytes(10): "name at byte 20",
            b"MSRP\x01": "shorter than its 14-byte head",
        }
        for raw, text in cases.items():
            with self.assertRaises(EnvelopeError, msg=text) as e:
                envelope.decode_reply(raw)
            self.assertIn(text, str(e.exception))

    def test_bad_request_arguments(self):
        x = ("f32", [1], bytes(4))
        with self.assertRaises(ValueError):
            envelope.encode_request(1, "", [("X",) + x])  # empty model name
        with self.assertRaises(ValueError):
            envelope.encode_request(1, "m", [("X", "f32", [2], bytes(4))])  # wrong byte count
        with self.assertRaises(ValueError):
            envelope.encode_request(1, "m", [("X", "c64", [1], bytes(8))])  # unknown dtype
        with self.assertRaises(ValueError):
            envelope.encode_request(1, "m", [("X",) + x], outputs=["o"] * 65)


def pair(max_record=65536, rekey_records=1 << 20, rekey_bytes=1 << 34):
    key, iv = os.urandom(32), os.urandom(12)
    s = msc1.RecordSender(1, key, iv, max_record, rekey_records, rekey_bytes)
    r = msc1.RecordReceiver(1, key, iv, max_record)
    return s, r


def frames(data):
    out, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at + 4)
        out.append(data[at:at + 16 + length])
        at += 16 + length
    return out


def feed(receiver, data):
    events = []
    for f in frames(data):
        events.append(receiver.open(receiver.check_header(f[:16]), f[16:]))
    return events


class WithoutCryptography(unittest.TestCase):
    def test_http_works_and_msc1_says_what_is_missing(self):
        # A finder that hides `cryptography`, as on a system without it.
        code = (
            "import sys\n"
            "class Hide:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'cryptography':\n"
            "            raise ImportError('hidden for the test')\n"
            "sys.meta_path.insert(0, Hide())\n"
            "sys.path.insert(0, %r)\n"
            "import myelin_client\n"
            "myelin_client.InferenceServerClient('http://127.0.0.1:1')\n"
            "try:\n"
            "    myelin_client.SecureClient('127.0.0.1:1')\n"
            "except ImportError as e:\n"
            "    print(e)\n" % os.path.dirname(HERE))
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("needs the cryptography module (Debian: python3-cryptography)", p.stdout)


class Records(unittest.TestCase):
    def test_chunking_to_the_peer_max_record(self):
        s, r = pair(max_record=1024)
        data = s.message(os.urandom(2500))
        fs = frames(data)
        self.assertEqual([f[1] for f in fs], [1, 1, 0])  # MORE, MORE, last
        self.assertEqual([len(f) - 32 for f in fs], [1024, 1024, 452])
        events = feed(r, data)
        self.assertEqual(events[:2], [None, None])
        self.assertEqual(len(events[2][1]), 2500)
        self.assertEqual(feed(r, s.message(b"")), [("message", b"")])

    def test_key_update_after_n_records_not_counting_itself(self):
        s, r = pair(rekey_records=3)
        key0 = s._key
        data = b"".join(s.message(b"m%d" % i) for i in range(7))
        self.assertEqual([f[0] for f in frames(data)],
                         [0x10, 0x10, 0x10, 0x11, 0x10, 0x10, 0x10, 0x11, 0x10])
        self.assertEqual(s._key, expand32(expand32(key0, b"key update", 32), b"key update", 32))
        events = [e for e in feed(r, data) if e]
        self.assertEqual([e[1] for e in events], [b"m%d" % i for i in range(7)])
        self.assertEqual(r.key_updates, 2)

    def test_key_update_by_bytes(self):
        s, r = pair(rekey_bytes=100)
        data = s.message(b"x" * 99) + s.message(b"y") + s.message(b"z")
        self.assertEqual([f[0] for f in frames(data)], [0x10, 0x10, 0x11, 0x10])
        self.assertEqual([e for e in feed(r, data) if e][2], ("message", b"z"))

    def test_receiver_refusals_carry_their_close_code(self):
        cases = []
        s, r = pair(max_record=1024)
        good = s.message(b"hello")
        bad = bytearray(good)
        bad[-1] ^= 1
        cases.append(("tag", bytes(bad), msc1.BAD_RECORD, "authentication failed"))
        cases.append(("seq", s.message(b"x"), msc1.PROTOCOL_ERROR, "seq 1, expected 0"))
        h = bytearray(good[:16])
        h[0] = 0x15
        cases.append(("type", bytes(h) + good[16:], msc1.PROTOCOL_ERROR, "unknown type 0x15"))
        h = bytearray(good[:16])
        h[2] = 1
        cases.append(("reserved", bytes(h) + good[16:], msc1.PROTOCOL_ERROR, "reserved"))
        h = bytearray(good[:16])
        h[1] = 2
        cases.append(("flags", bytes(h) + good[16:], msc1.PROTOCOL_ERROR, "unknown flags"))
        cases.append(("MORE on Ping", msc1.header(msc1.PING, 1, 24, 0) + bytes(24),
                      msc1.PROTOCOL_ERROR, "MORE flag on a non-Data"))
        cases.append(("too long", msc1.header(msc1.DATA, 0, 1024 + 17, 0),
                      msc1.PROTOCOL_ERROR, "outside [16, 1040]"))
        cases.append(("too short", msc1.header(msc1.DATA, 0, 15, 0), msc1.PROTOCOL_ERROR,
                      "outside [16, 1040]"))
        cases.append(("handshake type", msc1.header(msc1.RESPONSE, 0, 200, 0),
                      msc1.PROTOCOL_ERROR, "Response frame after the handshake"))
        for name, raw, code, text in cases:
            _, r2 = pair()
            r2 = msc1.RecordReceiver(1, r._key, r.iv, 1024)
            with self.assertRaises(msc1.ProtocolViolation, msg=name) as e:
                r2.open(r2.check_header(raw[:16]), raw[16:])
            self.assertEqual(e.exception.close_code, code, name)
            self.assertIn(text, str(e.exception), name)

    def test_control_record_payload_sizes(self):
        for ftype, payload, text in ((msc1.KEY_UPDATE, b"x", "KeyUpdate with a 1-byte"),
                                     (msc1.PING, b"1234567", "7-byte payload, must be 8"),
                                     (msc1.PONG, b"123456789", "9-byte payload"),
                                     (msc1.CLOSE, b"\x00", "1-byte payload, must be 2")):
            s, r = pair()
            raw = s._seal(ftype, 0, payload)
            with self.assertRaises(msc1.ProtocolViolation) as e:
                feed(r, raw)
            self.assertEqual(e.exception.close_code, msc1.PROTOCOL_ERROR)
            self.assertIn(text, str(e.exception))
        s, r = pair()
        self.assertEqual(feed(r, s.ping(b"12345678") + s._seal(msc1.CLOSE, 0, b"\x00\x07")),
                         [("ping", b"12345678"), ("close", 7)])

    def test_max_message(self):
        s, r = pair(max_record=1024)
        r.max_message = 2000
        with self.assertRaises(msc1.ProtocolViolation) as e:
            feed(r, s.message(bytes(2001)))
        self.assertEqual(e.exception.close_code, msc1.MESSAGE_TOO_LARGE)


class MockEvidence(unittest.TestCase):
    KEY = msc1.MOCK_KEY
    RD = bytes(range(32))

    def make(self, **kw):
        return msc1.mock_evidence(kw.get("key", self.KEY), b"srv", [(b"code", b"myelin-serve")],
                                  kw.get("rd", self.RD))

    def test_accepts_and_refuses(self):
        ident, ms = msc1.verify_mock_evidence(self.KEY, self.make(), self.RD)
        self.assertEqual((ident, ms), (b"srv", [(b"code", b"myelin-serve")]))
        msc1.check_policy({"code": [b"x", b"myelin-serve"]}, ms)
        refusals = [(self.make(rd=bytes(32)), "report_data does not bind"),
                    (self.make(key=b"k"), "HMAC does not verify"),
                    (self.make()[:-1], "HMAC does not verify"),
                    (b"MOCK", "shorter than the minimum")]
        body = b"MOCK\x00\x00\x01" + self.RD  # an authentic trailing byte
        refusals.append((body + hmac256(self.KEY, body), "1 trailing bytes at byte 6"))
        body = b"MOCK\x00\x01\x01a\x00\x09" + self.RD  # value runs past the end
        refusals.append((body + hmac256(self.KEY, body), "measurement 0 value at byte 10"))
        for ev, text in refusals:
            with self.assertRaises(msc1.AttestationError, msg=text) as e:
                msc1.verify_mock_evidence(self.KEY, ev, self.RD)
            self.assertIn(text, str(e.exception))
        with self.assertRaises(msc1.AttestationError):
            msc1.check_policy({"code": [b"other"]}, ms)


class Responder:
    """A scripted MSC1 responder on 127.0.0.1 (one connection), written from
    section 4 with the primitives above, for what a real server never does.
    `script(self)` runs after the handshake; `evidence(h_t2c)` makes the
    responder's evidence."""

    def __init__(self, test, mode=1, evidence=None, script=None, rekey_records=1 << 20,
                 handshake=True):
        self.test, self.mode, self.script = test, mode, script
        self.evidence = evidence or (lambda h: msc1.mock_evidence(
            msc1.MOCK_KEY, b"fake", [(b"code", b"myelin-serve")],
            hashlib.sha256(b"msc1 responder evidence" + h).digest()))
        self.rekey_records, self.handshake = rekey_records, handshake
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.error = None
        self.received_close = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.conn.recv(n - len(out))
            if not chunk:
                raise EOFError("client closed after %d of %d bytes" % (len(out), n))
            out += chunk
        return out

    def frame(self):
        h = self.read(16)
        return h, self.read(struct.unpack(">I", h[4:8])[0])

    def record(self):
        """The client's next record -> event (via the receiver)."""
        while True:
            h, body = self.frame()
            ev = self.recv.open(self.recv.check_header(h), body)
            if ev is not None:
                return ev

    def _run(self):
        try:
            self.conn, _ = self.listener.accept()
            self.conn.settimeout(WAIT)
            h1, b1 = self.frame()
            if not self.handshake:
                return self.script(self)
            max_record_i = struct.unpack(">I", b1[5 + 2 * b1[2]:9 + 2 * b1[2]])[0]
            e_i = b1[-64:-32]
            t1 = h1 + b1
            priv = X25519PrivateKey.generate()
            from cryptography.hazmat.primitives import serialization
            e_r = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
            clear = struct.pack(">HBI", 1, self.mode, 65536) + e_r + os.urandom(32)
            h_t2c = hashlib.sha256(t1 + clear).digest()
            prk = hmac256(h_t2c, priv.exchange(X25519PublicKey.from_public_bytes(e_i)))
            ev = self.evidence(h_t2c)
            self.khs_i, self.ivhs_i = expand32(prk, b"i hs key", 32), expand32(prk, b"i hs iv", 12)
            fin = hmac256(expand32(prk, b"r finished", 32),
                          hashlib.sha256(t1 + clear + struct.pack(">I", len(ev)) + ev).digest())
            inner = struct.pack(">I", len(ev)) + ev + fin
            h2 = msc1.header(2, 0, 71 + len(inner) + 16, 0)
            f2 = h2 + clear + ChaCha20Poly1305(expand32(prk, b"r hs key", 32)).encrypt(
                expand32(prk, b"r hs iv", 12), inner, h2 + clear)
            self.conn.sendall(f2)
            h3, b3 = self.frame()
            plain = ChaCha20Poly1305(self.khs_i).decrypt(self.ivhs_i, b3, h3)
            if h3[0] == msc1.CLOSE:
                self.received_close = struct.unpack(">H", plain)[0]
                return
            master = hmac256(hashlib.sha256(t1 + f2 + h3 + b3).digest(), prk)
            self.send = msc1.RecordSender(1, expand32(master, b"r2i key", 32),
                                          expand32(master, b"r2i iv", 12), max_record_i,
                                          rekey_records=self.rekey_records)
            self.recv = msc1.RecordReceiver(1, expand32(master, b"i2r key", 32),
                                            expand32(master, b"i2r iv", 12), 65536)
            if self.script:
                self.script(self)
        except Exception as e:  # reported by join()
            self.error = e

    def join(self):
        self.thread.join(WAIT)
        self.test.assertFalse(self.thread.is_alive(), "the responder did not finish")
        self.listener.close()
        if getattr(self, "conn", None):
            self.conn.close()
        if self.error:
            raise self.error


def reply(rid, value):
    return b"MSRP\x01\x00" + struct.pack("<Q", rid) + envelope.encode_tensors(
        [("y", "i64", [1], struct.pack("<q", value))])


def request_id(msg):
    return struct.unpack_from("<Q", msg, 6)[0]


class AgainstScriptedResponder(unittest.TestCase):
    def client(self, responder, **kw):
        return SecureClient(responder.address, attestation="mock", timeout=WAIT,
                            handshake_timeout=kw.pop("handshake_timeout", WAIT), **kw)

    def test_evidence_not_bound_to_this_handshake_is_refused(self):
        # Evidence over the transcript without the clear part of message 2.
        r = Responder(self, evidence=lambda h: msc1.mock_evidence(
            msc1.MOCK_KEY, b"fake", [(b"code", b"myelin-serve")], hashlib.sha256(
                b"msc1 responder evidence" + hashlib.sha256(b"other").digest()).digest()))
        with self.assertRaises(SecureChannelError) as e:
            self.client(r)
        self.assertIn("report_data does not bind this handshake", str(e.exception))
        r.join()
        # Section 4.5: Close(handshake_failure) under khs_i in place of message 3.
        self.assertEqual(r.received_close, msc1.HANDSHAKE_FAILURE)

    def test_evidence_in_mode_none_is_refused(self):
        r = Responder(self, mode=0, evidence=lambda h: b"x")
        with self.assertRaises(SecureChannelError) as e:
            SecureClient(r.address, attestation="none", timeout=WAIT)
        self.assertIn("1 bytes of evidence in mode none", str(e.exception))
        r.join()
        self.assertEqual(r.received_close, msc1.HANDSHAKE_FAILURE)

    def test_replies_out_of_order_with_key_updates_and_ping(self):
        def script(s):
            ids = [request_id(s.record()[1]) for _ in range(5)]
            s.conn.sendall(s.send.ping(b"pingpong"))
            for rid in reversed(ids):
                s.conn.sendall(s.send.message(reply(rid, rid * 10)))
            self.assertEqual(s.record(), ("pong", b"pingpong"))
            self.assertEqual(s.record(), ("close", 0))
            s.conn.sendall(s.send.close(0))
            s.conn.shutdown(socket.SHUT_WR)

        r = Responder(self, script=script, rekey_records=2)
        with self.client(r, rekey_records=2) as c:
            fs = [c.infer_async("m", {"X": ("u8", [1], b"\x01")}, request_id=100 + i)
                  for i in range(5)]
            got = [c.result(f).as_numpy("y").tolist() for f in fs]
            self.assertEqual(got, [[(100 + i) * 10] for i in range(5)])
            # The server's last KeyUpdate follows the last reply: wait for it.
            deadline = time.monotonic() + WAIT
            while c.key_updates_received < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(c.key_updates_received, 3)  # 6 records: ping + 5 replies
            # 5 requests, the Pong (answered before the replies came): 6 records.
            self.assertEqual(c.key_updates_sent, 3)
        r.join()

    def test_tampered_record_from_the_server_fails_the_channel(self):
        def script(s):
            rid = request_id(s.record()[1])
            bad = bytearray(s.send.message(reply(rid, 1)))
            bad[-3] ^= 0x80
            s.conn.sendall(bytes(bad))
            self.assertEqual(s.record(), ("close", msc1.BAD_RECORD))

        r = Responder(self, script=script)
        with self.client(r) as c:
            with self.assertRaises(SecureChannelError) as e:
                c.infer("m", {"X": ("u8", [1], b"\x01")})
            self.assertIn("authentication failed", str(e.exception))
            self.assertEqual(e.exception.close_code, msc1.BAD_RECORD)
        r.join()

    def test_unsolicited_reply_and_error_reply(self):
        def script(s):
            rid = request_id(s.record()[1])
            s.conn.sendall(s.send.message(b"MSRP\x01\x03" + struct.pack("<QI", rid, 4) + b"busy"))
            s.record()
            s.conn.sendall(s.send.message(reply(999, 1)))
            self.assertEqual(s.record(), ("close", msc1.PROTOCOL_ERROR))

        r = Responder(self, script=script)
        with self.client(r) as c:
            with self.assertRaises(InferenceError) as e:
                c.infer("m", {"X": ("u8", [1], b"\x01")})
            self.assertEqual((e.exception.code_name, e.exception.message, e.exception.status),
                             ("unavailable", "busy", 503))
            with self.assertRaises(SecureChannelError) as e:
                c.infer("m", {"X": ("u8", [1], b"\x01")})
            self.assertIn("reply for request id 999", str(e.exception))
        r.join()

    def test_end_of_stream_without_close_is_truncation(self):
        # EOF at a record boundary, after a header alone, and inside a body.
        for cut, text in ((0, "ended the stream without a Close (truncation)"),
                          (16, "inside the body of Data record seq 0 (0 of 20 bytes"),
                          (30, "inside the body of Data record seq 0 (14 of 20 bytes")):
            def script(s):
                s.record()
                s.conn.sendall(s.send.message(b"MSRP")[:cut])
                s.conn.shutdown(socket.SHUT_WR)

            r = Responder(self, script=script)
            with self.client(r) as c:
                with self.assertRaises(SecureChannelError) as e:
                    c.infer("m", {"X": ("u8", [1], b"\x01")})
                self.assertIn(text, str(e.exception))
            r.join()

    def test_server_close_fails_requests_and_is_answered(self):
        def script(s):
            s.record()
            s.conn.sendall(s.send.close(msc1.INTERNAL_ERROR))
            self.assertEqual(s.record(), ("close", msc1.NORMAL))
            s.conn.shutdown(socket.SHUT_WR)

        r = Responder(self, script=script)
        with self.client(r) as c:
            with self.assertRaises(SecureChannelError) as e:
                c.infer("m", {"X": ("u8", [1], b"\x01")})
            self.assertIn("Close internal_error", str(e.exception))
        r.join()

    def test_heartbeat_ping_then_idle_timeout(self):
        # Section 5.5: a Ping after `heartbeat` of sending nothing; Close(timeout)
        # after `idle_timeout` without a record from the server.
        seen = []

        def script(s):
            event = s.record()
            while event[0] == "ping":
                seen.append(event)
                event = s.record()
            seen.append(event)

        r = Responder(self, script=script)
        c = self.client(r, heartbeat=0.1, idle_timeout=2.0)
        try:
            c._reader.join(WAIT)
            self.assertFalse(c._reader.is_alive())
            with self.assertRaises(SecureChannelError) as e:
                c.infer("m", {"X": ("u8", [1], b"\x01")})
            self.assertIn("no record from the server for 2.0 s", str(e.exception))
        finally:
            c.close()
        r.join()
        self.assertGreaterEqual(len(seen), 2)
        self.assertEqual([k for k, _ in seen[:-1]], ["ping"] * (len(seen) - 1))
        self.assertTrue(all(len(v) == 8 for _, v in seen[:-1]))
        self.assertEqual(seen[-1], ("close", msc1.TIMEOUT))

    def test_silent_server_times_out_the_handshake(self):
        stop = threading.Event()
        r = Responder(self, handshake=False, script=lambda s: stop.wait(WAIT))
        with self.assertRaises(SecureChannelError) as e:
            self.client(r, handshake_timeout=0.3)
        self.assertIn("within 0.3 s", str(e.exception))
        stop.set()
        r.join()

    def test_wrong_frame_in_place_of_message_2(self):
        def script(s):
            s.conn.sendall(msc1.header(msc1.DATA, 0, 16, 0) + bytes(16))

        r = Responder(self, handshake=False, script=script)
        with self.assertRaises(SecureChannelError) as e:
            self.client(r)
        self.assertIn("expected Response (message 2), got Data", str(e.exception))
        r.join()


if __name__ == "__main__":
    unittest.main(verbosity=2)
