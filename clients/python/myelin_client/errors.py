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
