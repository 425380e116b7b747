"""MSC1, the myelin secure channel: the initiator's protocol core, sans I/O.

Written from docs/secure-channel.md alone; section numbers below are that
document's. This module takes bytes and hands bytes back; it owns no socket,
thread or clock (secure.py drives it). It needs Debian's python3-cryptography
(X25519, HKDF, ChaCha20-Poly1305, AES-256-GCM); the package imports it only
when a secure client is made, so HTTP-only users do not need it.

Errors: every violation by the peer raises ProtocolViolation carrying the
Close code the spec says to send (section 5.5's table) and a local message
saying what and where. Python cannot wipe immutable bytes: the ephemeral key and
`ss` are dropped as soon as they are used, the handshake secrets when the
handshake returns; that is the most this language allows.
"""

import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.exceptions import InvalidTag

# -- wire constants (sections 3, 4, 5) ----------------------------------------

HEADER = struct.Struct(">BBHIQ")  # type, flags, reserved, length, seq: 16 bytes
assert HEADER.size == 16
TAG = 16
HELLO, RESPONSE, FINISH = 0x01, 0x02, 0x03
DATA, KEY_UPDATE, PING, PONG, CLOSE = 0x10, 0x11, 0x12, 0x13, 0x14
TYPE_NAMES = {HELLO: "Hello", RESPONSE: "Response", FINISH: "Finish", DATA: "Data",
              KEY_UPDATE: "KeyUpdate", PING: "Ping", PONG: "Pong", CLOSE: "Close"}
FLAG_MORE = 0x01
MAX_HANDSHAKE_BODY = 65536 + 1024
MIN_MAX_RECORD, MAX_MAX_RECORD = 1024, 16777216
DEFAULT_MAX_RECORD = 65536
MAX_EVIDENCE = 65536
SEQ_LIMIT = (1 << 64) - 1
CLEAR_LEN = 71  # u16 suite, u8 mode, u32 max_record, 32 e_r, 32 nonce_r

SUITE_CHACHA20_POLY1305, SUITE_AES_256_GCM = 0x0001, 0x0002
SUITE_NAMES = {SUITE_CHACHA20_POLY1305: "ChaCha20-Poly1305", SUITE_AES_256_GCM: "AES-256-GCM"}
MODE_NONE, MODE_RESPONDER, MODE_MUTUAL = 0, 1, 2
MODE_NAMES = {0: "none", 1: "responder", 2: "mutual"}

CLOSE_CODES = {0: "normal", 1: "protocol_error", 2: "bad_record", 3: "handshake_failure",
               4: "timeout", 5: "message_too_large", 6: "internal_error"}
NORMAL, PROTOCOL_ERROR, BAD_RECORD, HANDSHAKE_FAILURE = 0, 1, 2, 3
TIMEOUT, MESSAGE_TOO_LARGE, INTERNAL_ERROR = 4, 5, 6


def close_code_name(code):
    return CLOSE_CODES.get(code, "unknown code %d" % code)


class ProtocolViolation(Exception):
    """The peer broke the protocol. `close_code` is the Close to send (None:
    send none, e.g. before any key exists); str() is the local reason."""

    def __init__(self, message, close_code=PROTOCOL_ERROR):
        super().__init__(message)
        self.close_code = close_code


class HandshakeFailed(ProtocolViolation):
    """The handshake failed; `close_frame` is the Close to send (or None)."""

    def __init__(self, message, close_frame=None):
        super().__init__(message, HANDSHAKE_FAILURE if close_frame else None)
        self.close_frame = close_frame


# -- primitives (section 1) ----------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def expand(prk, label, length):
    """Expand(prk, label, "", L): info = "msc1 " || label || u8 0."""
    info = b"msc1 " + label.encode("ascii") + b"\x00"
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


def aead(suite, key):
    if suite == SUITE_CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    if suite == SUITE_AES_256_GCM:
        return AESGCM(key)
    raise ValueError("unknown AEAD suite 0x%04x" % suite)


def record_nonce(iv, seq):
    """nonce := iv XOR (u32 0 || u64 seq) (section 5.1)."""
    return bytes(a ^ b for a, b in zip(iv, b"\x00\x00\x00\x00" + struct.pack(">Q", seq)))


def header(ftype, flags, length, seq):
    return HEADER.pack(ftype, flags, 0, length, seq)


# -- frame headers (section 3) -------------------------------------------------

class Header:
    __slots__ = ("type", "flags", "length", "seq", "raw")

    def __init__(self, raw):
        self.raw = bytes(raw)
        self.type, self.flags, reserved, self.length, self.seq = HEADER.unpack(self.raw)
        name = TYPE_NAMES.get(self.type)
        if name is None:
            raise ProtocolViolation("frame header: unknown type 0x%02x" % self.type)
        if reserved != 0:
            raise ProtocolViolation("%s header: reserved field is 0x%04x, must be 0"
                                    % (name, reserved))
        if self.flags & ~FLAG_MORE:
            raise ProtocolViolation("%s header: unknown flags 0x%02x" % (name, self.flags))
        if self.flags & FLAG_MORE and self.type != DATA:
            raise ProtocolViolation("%s header: MORE flag on a non-Data record" % name)

    @property
    def name(self):
        return TYPE_NAMES[self.type]


# -- mock attestation (section 6) ----------------------------------------------

MOCK_KEY = b"myelin mock attestation key (tests only)"  # docs/serving.md, secure front end


class AttestationError(Exception):
    pass


def mock_evidence(key, identity, measurements, report_data):
    """Builds mock evidence (used by tests to play a responder)."""
    body = b"MOCK" + bytes([len(identity)]) + identity + bytes([len(measurements)])
    for name, value in measurements:
        body += bytes([len(name)]) + name + struct.pack(">H", len(value)) + value
    body += report_data
    return body + hmac.new(key, body, hashlib.sha256).digest()


def verify_mock_evidence(key, evidence, report_data):
    """-> (identity bytes, [(name, value)]); AttestationError saying why not.

    The HMAC and report_data are checked before anything is parsed, as the
    spec requires; then the fields, with no trailing bytes."""
    if len(evidence) < 4 + 1 + 1 + 64:
        raise AttestationError("mock evidence: %d bytes, shorter than the minimum 70"
                               % len(evidence))
    body, mac = evidence[:-32], evidence[-32:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        raise AttestationError("mock evidence: HMAC does not verify under the mock key")
    if not hmac.compare_digest(body[-32:], report_data):
        raise AttestationError("mock evidence: report_data does not bind this handshake")
    fields = body[:-32]
    if fields[:4] != b"MOCK":
        raise AttestationError("mock evidence: magic %r, expected b'MOCK'" % fields[:4])
    at = 4

    def take(n, what):
        nonlocal at
        if at + n > len(fields):
            raise AttestationError("mock evidence: %s at byte %d runs past the end" % (what, at))
        out = fields[at:at + n]
        at += n
        return out

    identity = take(take(1, "identity length")[0], "identity")
    measurements = []
    for i in range(take(1, "measurement count")[0]):
        name = take(take(1, "measurement %d name length" % i)[0], "measurement %d name" % i)
        (vlen,) = struct.unpack(">H", take(2, "measurement %d value length" % i))
        measurements.append((name, take(vlen, "measurement %d value" % i)))
    if at != len(fields):
        raise AttestationError("mock evidence: %d trailing bytes at byte %d"
                               % (len(fields) - at, at))
    return identity, measurements


def check_policy(policy, measurements):
    """policy: {name: [allowed values]}; each name must be present and equal
    (constant time) to one allowed value."""
    have = {}
    for name, value in measurements:
        have.setdefault(name, []).append(value)
    for name, allowed in policy.items():
        key = name.encode() if isinstance(name, str) else name
        values = have.get(key)
        if not values:
            raise AttestationError("policy: measurement '%s' is missing" % key.decode("utf-8",
                                                                                       "replace"))
        ok = False
        for v in values:
            for a in allowed:
                a = a.encode() if isinstance(a, str) else a
                ok |= hmac.compare_digest(v, a)
        if not ok:
            raise AttestationError("policy: measurement '%s' has no allowed value"
                                   % key.decode("utf-8", "replace"))


# -- handshake (section 4) -----------------------------------------------------

class HandshakeResult:
    """What the handshake agreed: suite, mode, the peer's max_record,
    session_id, the verified identity and measurements, and the traffic
    record layers."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Initiator:
    """One handshake from the initiator's side.

    hello() -> message 1 bytes; then, with the complete message 2 frame,
    finish(frame) -> (message 3 bytes, HandshakeResult) or HandshakeFailed.
    verifier(evidence, report_data, mode) -> (identity, measurements) must
    raise AttestationError to refuse."""

    def __init__(self, suites=(SUITE_CHACHA20_POLY1305, SUITE_AES_256_GCM), min_mode=0,
                 max_mode=0, max_record=DEFAULT_MAX_RECORD, verifier=None):
        if not 1 <= len(suites) <= 8 or any(s not in SUITE_NAMES for s in suites):
            raise ValueError("suites: 1..8 of %s" % ", ".join("0x%04x" % s for s in SUITE_NAMES))
        if not 0 <= min_mode <= max_mode <= 2:
            raise ValueError("modes: need 0 <= min_mode <= max_mode <= 2")
        if max_mode == MODE_MUTUAL:
            raise ValueError("mode mutual needs initiator evidence, which this client "
                             "cannot produce")
        if not MIN_MAX_RECORD <= max_record <= MAX_MAX_RECORD:
            raise ValueError("max_record %d outside [%d, %d]"
                             % (max_record, MIN_MAX_RECORD, MAX_MAX_RECORD))
        self.suites = tuple(suites)
        self.min_mode, self.max_mode = min_mode, max_mode
        self.max_record = max_record
        self.verifier = verifier
        self._key = X25519PrivateKey.generate()
        self._nonce = os.urandom(32)
        self._t1 = None

    def hello(self):
        e_i = _raw_public(self._key)
        body = (struct.pack(">HB", 1, len(self.suites))
                + b"".join(struct.pack(">H", s) for s in self.suites)
                + struct.pack(">BBI", self.min_mode, self.max_mode, self.max_record)
                + e_i + self._nonce)
        self._t1 = header(HELLO, 0, len(body), 0) + body
        return self._t1

    @staticmethod
    def check_response_header(hdr):
        """The checks of section 3 on message 2's header, before its body."""
        if hdr.type != RESPONSE:
            raise HandshakeFailed("handshake: expected Response (message 2), got %s" % hdr.name)
        if hdr.flags or hdr.seq:
            raise HandshakeFailed("Response header: flags %d and seq %d must be 0"
                                  % (hdr.flags, hdr.seq))
        if hdr.length > MAX_HANDSHAKE_BODY:
            raise HandshakeFailed("Response header: length %d above the handshake limit %d"
                                  % (hdr.length, MAX_HANDSHAKE_BODY))
        if hdr.length < CLEAR_LEN + 36 + TAG:
            raise HandshakeFailed("Response header: length %d below the minimum %d"
                                  % (hdr.length, CLEAR_LEN + 36 + TAG))

    def finish(self, frame):
        hdr = Header(frame[:16])
        self.check_response_header(hdr)
        if len(frame) != 16 + hdr.length:
            raise HandshakeFailed("Response: %d bytes, header says %d" % (len(frame),
                                                                          16 + hdr.length))
        clear = frame[16:16 + CLEAR_LEN]
        suite, mode, max_record = struct.unpack(">HBI", clear[:7])
        e_r = clear[7:39]  # nonce_r (clear[39:71]) is bound through the transcript
        if suite not in self.suites:
            raise HandshakeFailed("Response: suite 0x%04x was not offered" % suite)
        if not self.min_mode <= mode <= self.max_mode:
            raise HandshakeFailed("Response: mode %d outside the offered [%d, %d]"
                                  % (mode, self.min_mode, self.max_mode))
        if not MIN_MAX_RECORD <= max_record <= MAX_MAX_RECORD:
            raise HandshakeFailed("Response: max_record %d outside [%d, %d]"
                                  % (max_record, MIN_MAX_RECORD, MAX_MAX_RECORD))
        t2c = self._t1 + clear
        h_t2c = sha256(t2c)
        try:
            ss = self._key.exchange(X25519PublicKey.from_public_bytes(e_r))
        except ValueError:  # cryptography refuses an all-zero shared secret
            raise HandshakeFailed("Response: X25519 with e_r gives the all-zero secret "
                                  "(low-order point)") from None
        self._key = None  # the ephemeral private key goes once ss exists
        if ss == bytes(32):
            raise HandshakeFailed("Response: X25519 with e_r gives the all-zero secret")
        prk = hkdf_extract(h_t2c, ss)
        ss = None
        khs_r, ivhs_r = expand(prk, "r hs key", 32), expand(prk, "r hs iv", 12)
        khs_i, ivhs_i = expand(prk, "i hs key", 32), expand(prk, "i hs iv", 12)
        kfin_r, kfin_i = expand(prk, "r finished", 32), expand(prk, "i finished", 32)

        def fail(reason):
            # After prk: a Close(handshake_failure) under khs_i, seq 0 (4.5).
            h = header(CLOSE, 0, 2 + TAG, 0)
            close = h + aead(suite, khs_i).encrypt(ivhs_i, struct.pack(">H", HANDSHAKE_FAILURE), h)
            return HandshakeFailed(reason, close)

        try:
            inner2 = aead(suite, khs_r).decrypt(ivhs_r, frame[16 + CLEAR_LEN:], hdr.raw + clear)
        except InvalidTag:
            raise fail("Response: the sealed part does not open (bad tag)") from None
        (ev_len,) = struct.unpack(">I", inner2[:4])
        if ev_len != hdr.length - CLEAR_LEN - 36 - TAG:
            raise fail("Response: len(evidence_r) %d, but the frame leaves %d"
                       % (ev_len, hdr.length - CLEAR_LEN - 36 - TAG))
        evidence = inner2[4:4 + ev_len]
        finished_r = inner2[4 + ev_len:]
        want = hmac.new(kfin_r, sha256(t2c + inner2[:4 + ev_len]), hashlib.sha256).digest()
        if not hmac.compare_digest(want, finished_r):
            raise fail("Response: finished_r does not verify")
        identity, measurements = b"", []
        if mode == MODE_NONE:
            if evidence:
                raise fail("Response: %d bytes of evidence in mode none" % len(evidence))
        else:
            report_data = sha256(b"msc1 responder evidence" + h_t2c)
            if self.verifier is None:
                raise fail("Response: mode %s needs a verifier" % MODE_NAMES[mode])
            try:
                identity, measurements = self.verifier(evidence, report_data, mode)
            except AttestationError as e:
                raise fail("Response: responder evidence refused: %s" % e) from None
        t2 = self._t1 + bytes(frame)
        inner3 = struct.pack(">I", 0) + hmac.new(
            kfin_i, sha256(t2 + struct.pack(">I", 0)), hashlib.sha256).digest()
        h3 = header(FINISH, 0, len(inner3) + TAG, 0)
        msg3 = h3 + aead(suite, khs_i).encrypt(ivhs_i, inner3, h3)
        master = hkdf_extract(sha256(t2 + msg3), prk)
        # prk and the handshake keys die with this frame (section 4.4: erase them).
        result = HandshakeResult(
            suite=suite, mode=mode, peer_max_record=max_record,
            session_id=expand(master, "session id", 16),
            identity=identity, measurements=measurements,
            send=RecordSender(suite, expand(master, "i2r key", 32), expand(master, "i2r iv", 12),
                              max_record),
            recv=RecordReceiver(suite, expand(master, "r2i key", 32),
                                expand(master, "r2i iv", 12), self.max_record))
        return msg3, result


def _raw_public(private_key):
    from cryptography.hazmat.primitives import serialization
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


# -- records (section 5) -------------------------------------------------------

class RecordSender:
    """Seals this side's records: strictly consecutive seq, chunking to the
    peer's max_record, KeyUpdate after rekey_records records or rekey_bytes
    plaintext bytes under one key (the KeyUpdate itself not counted)."""

    def __init__(self, suite, key, iv, peer_max_record, rekey_records=1 << 20,
                 rekey_bytes=1 << 34):
        self.suite, self.iv = suite, iv
        self._key = key
        self._aead = aead(suite, key)
        self.seq = 0
        self.peer_max_record = peer_max_record
        self.rekey_records, self.rekey_bytes = rekey_records, rekey_bytes
        self._records = 0
        self._bytes = 0
        self.key_updates = 0
        self.closed = False

    def _seal(self, ftype, flags, plaintext):
        if self.closed:
            raise ValueError("the channel's Close was sent: nothing may follow it")
        if self.seq >= SEQ_LIMIT:
            raise ValueError("sequence number space exhausted")
        h = header(ftype, flags, len(plaintext) + TAG, self.seq)
        out = h + self._aead.encrypt(record_nonce(self.iv, self.seq), bytes(plaintext), h)
        self.seq += 1
        return out

    def _counted(self, ftype, flags, plaintext, out):
        out.append(self._seal(ftype, flags, plaintext))
        self._records += 1
        self._bytes += len(plaintext)
        if self._records >= self.rekey_records or self._bytes >= self.rekey_bytes:
            out.append(self._seal(KEY_UPDATE, 0, b""))
            self._key = expand(self._key, "key update", 32)
            self._aead = aead(self.suite, self._key)
            self._records = self._bytes = 0
            self.key_updates += 1

    def message(self, payload):
        """-> the frames of one application message (Data records)."""
        out = []
        view = memoryview(payload)
        n = self.peer_max_record
        if len(view) == 0:
            self._counted(DATA, 0, b"", out)
        for at in range(0, len(view), n):
            last = at + n >= len(view)
            self._counted(DATA, 0 if last else FLAG_MORE, view[at:at + n], out)
        return b"".join(out)

    def ping(self, payload):
        out = []
        self._counted(PING, 0, payload, out)
        return b"".join(out)

    def pong(self, payload):
        out = []
        self._counted(PONG, 0, payload, out)
        return b"".join(out)

    def close(self, code):
        frame = self._seal(CLOSE, 0, struct.pack(">H", code))
        self.closed = True
        return frame


class RecordReceiver:
    """Opens the peer's records in order and reassembles messages.

    check_header(raw16) decides from the header alone (section 3); then
    open(header, body) returns an event tuple or None:
      ("message", bytes) | ("ping", 8 bytes) | ("pong", 8 bytes) |
      ("close", code) | None (a KeyUpdate, or a chunk of a message).
    ProtocolViolation carries the Close code to answer with."""

    def __init__(self, suite, key, iv, max_record, max_message=1 << 30):
        self.suite, self.iv = suite, iv
        self._key = key
        self._aead = aead(suite, key)
        self.expect = 0
        self.max_record = max_record
        self.max_message = max_message
        self._parts = []
        self._size = 0
        self.key_updates = 0

    def check_header(self, raw):
        hdr = Header(raw)
        if not DATA <= hdr.type <= CLOSE:
            raise ProtocolViolation("record seq %d: %s frame after the handshake"
                                    % (hdr.seq, hdr.name))
        if hdr.length < TAG or hdr.length > self.max_record + TAG:
            raise ProtocolViolation("%s record seq %d: length %d outside [16, %d]"
                                    % (hdr.name, hdr.seq, hdr.length, self.max_record + TAG))
        if hdr.seq != self.expect:
            raise ProtocolViolation("%s record seq %d, expected %d" % (hdr.name, hdr.seq,
                                                                      self.expect))
        return hdr

    def open(self, hdr, body):
        try:
            plain = self._aead.decrypt(record_nonce(self.iv, hdr.seq), bytes(body), hdr.raw)
        except InvalidTag:
            raise ProtocolViolation("%s record seq %d: authentication failed (bad tag)"
                                    % (hdr.name, hdr.seq), BAD_RECORD) from None
        self.expect += 1
        where = "%s record seq %d" % (hdr.name, hdr.seq)
        if hdr.type == DATA:
            self._size += len(plain)
            if self._size > self.max_message:
                raise ProtocolViolation("%s: message of more than %d bytes exceeds max_message %d"
                                        % (where, self._size - 1, self.max_message),
                                        MESSAGE_TOO_LARGE)
            self._parts.append(plain)
            if hdr.flags & FLAG_MORE:
                return None
            message = b"".join(self._parts)
            self._parts, self._size = [], 0
            return ("message", message)
        if hdr.type == KEY_UPDATE:
            if plain:
                raise ProtocolViolation("%s: KeyUpdate with a %d-byte payload" % (where,
                                                                                 len(plain)))
            try:
                self._key = expand(self._key, "key update", 32)
                self._aead = aead(self.suite, self._key)
            except Exception as e:  # pragma: no cover - a failing KDF
                raise ProtocolViolation("%s: deriving the next key failed: %s" % (where, e),
                                        INTERNAL_ERROR) from None
            self.key_updates += 1
            return None
        if hdr.type in (PING, PONG):
            if len(plain) != 8:
                raise ProtocolViolation("%s: %d-byte payload, must be 8" % (where, len(plain)))
            return ("ping" if hdr.type == PING else "pong", plain)
        if len(plain) != 2:  # CLOSE
            raise ProtocolViolation("%s: %d-byte payload, must be 2" % (where, len(plain)))
        return ("close", struct.unpack(">H", plain)[0])
