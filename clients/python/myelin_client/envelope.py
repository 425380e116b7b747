"""The inference envelope (MSRQ/MSRP) and the tensor framing, sans I/O.

Written from docs/serving.md ("The inference envelope") and
docs/secure-channel.md section 8. Every integer here is little-endian
(le16/le32/le64). Standard library only: numpy is not needed to encode
(dtype, shape, bytes) tensors or to decode replies.
"""

import struct

from .errors import MyelinError

# dtype code -> (name, OIP datatype, element size, numpy type string or None)
DTYPES = {1: ("f32", "FP32", 4, "<f4"), 2: ("f64", "FP64", 8, "<f8"),
          3: ("f16", "FP16", 2, "<f2"), 4: ("bf16", "BF16", 2, None),
          5: ("i32", "INT32", 4, "<i4"), 6: ("i64", "INT64", 8, "<i8"),
          7: ("u8", "UINT8", 1, "|u1"), 8: ("u32", "UINT32", 4, "<u4")}
_BY_NAME = {}
for _code, (_n, _oip, _size, _np) in DTYPES.items():
    _BY_NAME[_n] = _BY_NAME[_oip] = _BY_NAME[_oip.lower()] = _code
_NUMPY_NAMES = {"float32": 1, "float64": 2, "float16": 3, "int32": 5, "int64": 6, "uint8": 7,
                "uint32": 8}

MAX_NAME = 1024
MAX_RANK = 8
MAX_DIM = (1 << 63) - 1
U64_MAX = (1 << 64) - 1
MAX_OUTPUTS = 64
MAX_ERROR_MESSAGE = 65535
MAX_TIMEOUT_US = 86_400_000_000
REPLY_CODES = {0: "ok", 1: "bad_request", 2: "not_found", 3: "unavailable",
               4: "deadline_exceeded", 5: "internal"}


class EnvelopeError(MyelinError):
    """A reply or tensor that does not decode; says the field and byte offset."""


def dtype_code(dtype):
    """A dtype given as a code (1..8), a name ("f32", "FP32") or a numpy dtype."""
    if isinstance(dtype, int) and not isinstance(dtype, bool):
        if dtype in DTYPES:
            return dtype
    elif isinstance(dtype, str):
        if dtype in _BY_NAME:
            return _BY_NAME[dtype]
    else:
        name = getattr(dtype, "name", None) or getattr(getattr(dtype, "dtype", None), "name", None)
        if name in _NUMPY_NAMES:
            return _NUMPY_NAMES[name]
    raise ValueError("unknown dtype %r (use one of %s)"
                     % (dtype, ", ".join(v[0] for v in DTYPES.values())))


def _utf8(text, what, lo, hi):
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("%s: not valid UTF-8 (%s)" % (what, e)) from None
    if not lo <= len(raw) <= hi:
        raise ValueError("%s: %d bytes, outside [%d, %d]" % (what, len(raw), lo, hi))
    return raw


def encode_tensor(name, dtype, shape, data):
    """One tensor of the framing; dtype as for dtype_code, data bytes-like."""
    code = dtype_code(dtype)
    nm = _utf8(name, "tensor '%s': name" % name, 0, MAX_NAME)
    shape = [int(d) for d in shape]
    if len(shape) > MAX_RANK:
        raise ValueError("tensor '%s': rank %d above %d" % (name, len(shape), MAX_RANK))
    count = 1
    for d in shape:
        if not 0 <= d <= MAX_DIM:
            raise ValueError("tensor '%s': dim %d outside [0, 2^63-1]" % (name, d))
        count *= d
    data = memoryview(data).cast("B")
    if count * DTYPES[code][2] != len(data):
        raise ValueError("tensor '%s': %d data bytes, shape %s of %s needs %d"
                         % (name, len(data), shape, DTYPES[code][0], count * DTYPES[code][2]))
    return b"".join([struct.pack("<H", len(nm)), nm, struct.pack("<BB", code, len(shape)),
                     struct.pack("<%dQ" % len(shape), *shape), struct.pack("<Q", len(data)),
                     data])


def encode_tensors(tensors):
    """tensors: [(name, dtype, shape, data)] -> le32 n || tensor[n]."""
    return struct.pack("<I", len(tensors)) + b"".join(encode_tensor(*t) for t in tensors)


def decode_tensors(buf, base, what):
    """-> [(name, dtype code, shape, memoryview data)] from buf (the framing
    to its end); `base` is buf's byte offset in the message, for errors."""
    mv = memoryview(buf)
    at = 0

    def need(n, field):
        if at + n > len(mv):
            raise EnvelopeError("%s: %s at byte %d: needs %d bytes, %d left"
                                % (what, field, base + at, n, len(mv) - at))

    need(4, "n_tensors")
    (n,) = struct.unpack_from("<I", mv, 0)
    if n > (len(mv) - 4) // 12:
        raise EnvelopeError("%s: n_tensors %d at byte %d: %d bytes cannot hold that many"
                            % (what, n, base, len(mv) - 4))
    at = 4
    out = []
    for i in range(n):
        t = "%s: tensor %d" % (what, i)
        need(2, "tensor %d name_len" % i)
        (nlen,) = struct.unpack_from("<H", mv, at)
        if nlen > MAX_NAME:
            raise EnvelopeError("%s name_len at byte %d: %d above %d" % (t, base + at, nlen,
                                                                          MAX_NAME))
        at += 2
        need(nlen, "tensor %d name" % i)
        try:
            name = bytes(mv[at:at + nlen]).decode("utf-8")
        except UnicodeDecodeError as e:
            raise EnvelopeError("%s name at byte %d: not valid UTF-8 (%s)"
                                % (t, base + at, e)) from None
        at += nlen
        need(2, "tensor %d dtype and rank" % i)
        code, rank = mv[at], mv[at + 1]
        if code not in DTYPES:
            raise EnvelopeError("%s ('%s') dtype at byte %d: unknown dtype %d"
                                % (t, name, base + at, code))
        if rank > MAX_RANK:
            raise EnvelopeError("%s ('%s') rank at byte %d: %d above %d"
                                % (t, name, base + at + 1, rank, MAX_RANK))
        at += 2
        need(8 * rank, "tensor %d dims" % i)
        shape = list(struct.unpack_from("<%dQ" % rank, mv, at))
        count = 1
        for k, d in enumerate(shape):
            if d > MAX_DIM:
                raise EnvelopeError("%s ('%s') dim %d at byte %d: %d above 2^63-1"
                                    % (t, name, k, base + at + 8 * k, d))
            count *= d
            if count > U64_MAX:
                raise EnvelopeError("%s ('%s') dims: the element count overflows u64"
                                    % (t, name))
        at += 8 * rank
        nbytes = count * DTYPES[code][2]
        if nbytes > U64_MAX:
            raise EnvelopeError("%s ('%s') dims: the byte count overflows u64" % (t, name))
        need(8, "tensor %d data_len" % i)
        (dlen,) = struct.unpack_from("<Q", mv, at)
        if dlen != nbytes:
            raise EnvelopeError("%s ('%s') data_len at byte %d: %d, shape %s of %s needs %d"
                                % (t, name, base + at, dlen, shape, DTYPES[code][0], nbytes))
        at += 8
        need(dlen, "tensor %d data" % i)
        out.append((name, code, shape, mv[at:at + dlen]))
        at += dlen
    if at != len(mv):
        raise EnvelopeError("%s: %d bytes left over at byte %d after %d tensors"
                            % (what, len(mv) - at, base + at, n))
    return out


def encode_request(request_id, model, inputs, outputs=(), version="", timeout_us=0):
    """inputs: [(name, dtype, shape, data)]; -> the MSRQ message bytes."""
    if not 0 <= request_id <= U64_MAX:
        raise ValueError("request id %d outside the le64 range" % request_id)
    if not 0 <= timeout_us <= U64_MAX:
        raise ValueError("timeout_us %d outside the le64 range" % timeout_us)
    m = _utf8(model, "model name", 1, 255)
    v = _utf8(version, "model version", 0, 255)
    outputs = list(outputs)
    if len(outputs) > MAX_OUTPUTS:
        raise ValueError("%d output names, at most %d" % (len(outputs), MAX_OUTPUTS))
    parts = [b"MSRQ", struct.pack("<BBQQ", 1, 0, request_id, min(timeout_us, MAX_TIMEOUT_US)),
             struct.pack("<H", len(m)), m, struct.pack("<H", len(v)), v,
             struct.pack("<H", len(outputs))]
    for o in outputs:
        raw = _utf8(o, "output name '%s'" % o, 1, MAX_NAME)
        parts += [struct.pack("<H", len(raw)), raw]
    parts.append(encode_tensors(inputs))
    return b"".join(parts)


class Reply:
    """A decoded MSRP: id, code (0 ok), and tensors (code 0) or message."""

    __slots__ = ("id", "code", "tensors", "message")

    def __init__(self, rid, code, tensors, message):
        self.id, self.code, self.tensors, self.message = rid, code, tensors, message

    @property
    def code_name(self):
        return REPLY_CODES[self.code]


def decode_reply(msg):
    mv = memoryview(msg)
    if len(mv) < 14:
        raise EnvelopeError("reply envelope: %d bytes, shorter than its 14-byte head" % len(mv))
    if bytes(mv[:4]) != b"MSRP":
        raise EnvelopeError("reply envelope: magic %r at byte 0, expected b'MSRP'"
                            % bytes(mv[:4]))
    version, code, rid = struct.unpack_from("<BBQ", mv, 4)
    if version != 1:
        raise EnvelopeError("reply envelope: version at byte 4: %d, expected 1" % version)
    if code not in REPLY_CODES:
        raise EnvelopeError("reply envelope (id %d): code at byte 5: %d above 5" % (rid, code))
    if code == 0:
        return Reply(rid, 0, decode_tensors(mv[14:], 14, "reply envelope (id %d)" % rid), None)
    if len(mv) < 18:
        raise EnvelopeError("reply envelope (id %d): message_len at byte 14 runs past the end"
                            % rid)
    (mlen,) = struct.unpack_from("<I", mv, 14)
    if mlen > MAX_ERROR_MESSAGE or 18 + mlen != len(mv):
        raise EnvelopeError("reply envelope (id %d): message_len at byte 14: %d, but %d bytes "
                            "follow (at most %d allowed)" % (rid, mlen, len(mv) - 18,
                                                              MAX_ERROR_MESSAGE))
    try:
        text = bytes(mv[18:]).decode("utf-8")
    except UnicodeDecodeError as e:
        raise EnvelopeError("reply envelope (id %d): message at byte 18: not valid UTF-8 (%s)"
                            % (rid, e)) from None
    return Reply(rid, code, None, text)
