"""myelin_client: Python clients of `myelin serve`.

HTTP and HTTPS (the Open Inference Protocol, KServe v2 REST):

    from myelin_client import InferenceServerClient
    with InferenceServerClient("https://127.0.0.1:8443", cafile="ca.pem") as c:
        result = c.infer("logistic_regression", {"X": [[5.1, 3.5, 1.4, 0.2]]})
        print(result.as_numpy("probabilities"))

Standard library only (http.client, ssl, json); numpy, when installed, is
used for numpy inputs, binary tensor data and `InferResult.as_numpy`.

Transports: `http.py` is the OIP HTTP/HTTPS client. The MSC1 secure-channel
client (docs/secure-channel.md) will sit beside it as `secure.py`, returning
the same `InferResult` and raising the same errors, once the server's
secure front end and its inference envelope land.
"""

from .errors import MyelinConnectionError, MyelinError, ServerError
from .http import InferenceServerClient, InferResult

__all__ = ["InferenceServerClient", "InferResult", "MyelinError", "MyelinConnectionError",
           "ServerError"]
__version__ = "0.1.0"
