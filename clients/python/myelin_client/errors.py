"""Errors of myelin_client. Every failure is a MyelinError."""


class MyelinError(Exception):
    """Base of every error this package raises."""


class MyelinConnectionError(MyelinError):
    """The server could not be reached or the connection failed (refused,
    timed out, TLS verification or handshake failure, closed mid-answer)."""


class ServerError(MyelinError):
    """The server answered with an error status.

    `status` is the HTTP status (400 bad input, 404 unknown model, 503
    overloaded or not ready, 504 timed out in the queue, ...); `message` is
    the server's own explanation (its {"error": "..."} body)."""

    def __init__(self, status, message, method="", path=""):
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        super().__init__("%s %s: HTTP %d: %s" % (method, path, status, message))


class SecureChannelError(MyelinConnectionError):
    """The MSC1 secure channel failed or was refused: a handshake that did
    not complete (bad evidence, policy, tag, ...), a malformed or tampered
    record from the server, a timeout, or the channel closed (by either
    side). `close_code` is the MSC1 Close code involved (sent or received),
    or None when none was."""

    def __init__(self, message, close_code=None):
        super().__init__(message)
        self.close_code = close_code


class InferenceError(ServerError):
    """The server answered an MSC1 inference request with an error reply.

    `code` is the envelope's code (1 bad_request, 2 not_found, 3
    unavailable, 4 deadline_exceeded, 5 internal) and `code_name` its name;
    `message` the server's explanation; `request_id` the request's id.
    `status` is the matching HTTP status (400, 404, 503, 504, 500), so code
    that handles ServerError from the HTTP client handles this one too."""

    STATUS = {1: 400, 2: 404, 3: 503, 4: 504, 5: 500}

    def __init__(self, code, code_name, message, request_id, model=""):
        MyelinError.__init__(self, "model '%s', request %d: %s: %s"
                             % (model, request_id, code_name, message))
        self.status = self.STATUS.get(code, 500)
        self.code = code
        self.code_name = code_name
        self.message = message
        self.request_id = request_id
        self.method = "MSC1"
        self.path = model


class ReplyTimeout(MyelinError, TimeoutError):
    """No reply to an MSC1 request within the caller's timeout. The channel
    stays open; a reply that comes later is discarded."""
