"""myelin_client: Python clients of `myelin serve`.

HTTP and HTTPS (the Open Inference Protocol, KServe v2 REST):

    from myelin_client import InferenceServerClient
    with InferenceServerClient("https://127.0.0.1:8443", cafile="ca.pem") as c:
        result = c.infer("logistic_regression", {"X": [[5.1, 3.5, 1.4, 0.2]]})
        print(result.as_numpy("probabilities"))

Standard library only (http.client, ssl, json); numpy, when installed, is
used for numpy inputs, binary tensor data and `InferResult.as_numpy`.

MSC1, the attested and encrypted channel of `myelin serve --secure-port`
(docs/secure-channel.md, the envelope in docs/serving.md):

    from myelin_client import SecureClient
    with SecureClient("127.0.0.1:8443", attestation="mock") as c:
        result = c.infer("logistic_regression", {"X": np.array(rows, np.float32)})

Transports: `http.py` is the OIP HTTP/HTTPS client; `secure.py` the MSC1
client (protocol core `msc1.py`, envelope `envelope.py`), which returns the
same `InferResult`. It needs Debian's python3-cryptography, imported only
when a SecureClient is made, so HTTP-only users do without it.
"""

from .errors import (InferenceError, MyelinConnectionError, MyelinError, ReplyTimeout,
                     SecureChannelError, ServerError)
from .http import InferenceServerClient, InferResult
from .secure import SecureClient

__all__ = ["InferenceServerClient", "InferResult", "SecureClient", "MyelinError",
           "MyelinConnectionError", "ServerError", "InferenceError", "SecureChannelError",
           "ReplyTimeout"]
__version__ = "0.1.0"
