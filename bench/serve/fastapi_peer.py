#!/usr/bin/python3
"""FastAPI + scikit-learn peer of `myelin bench serve` (Open Inference Protocol v2).

  bench/serve/fastapi_peer.py --models OUTDIR --port P [--workers N]
  bench/serve/fastapi_peer.py --versions      # one JSON line: the peer's stack

Serves every OUTDIR/NAME.pkl written by bench/serve/make_models.py on
127.0.0.1:P (loopback only) under uvicorn:

  POST /v2/models/NAME/infer   OIP v2 JSON request in, JSON response out:
                               outputs "label" (INT64 [N]) and "probabilities"
                               (FP32 [N, classes]), the names of the ONNX
                               graphs of models/sk2onnx.py
  GET  /v2/health/ready        200 {"ready":true} once the models are loaded
  GET  /v2/health/live         200 {"live":true}

Written the way a competent user would write a fast FastAPI model server:
the raw body is parsed with json.loads (no pydantic model), the input becomes
one numpy array, and the handler is `async def` so the prediction runs on the
event loop without a thread-pool hop. predict_proba runs once and the label is
classes_[argmax], which is what predict() computes for these classifiers
(LogisticRegression, GradientBoostingClassifier, MLPClassifier), without
running the model twice. uvicorn picks uvloop and httptools when installed
(Debian python3-uvloop, python3-httptools), else asyncio and h11.

--workers N (N > 1) runs N uvicorn worker processes on one listening socket;
uvicorn then needs the app as an import string, so the app is built by the
factory create_app(), which reads the model directory from the environment
variable MYELIN_FASTAPI_MODELS. It is what this uvicorn command line runs:

  MYELIN_FASTAPI_MODELS=OUTDIR python3 -m uvicorn --app-dir bench/serve \
      --factory fastapi_peer:create_app --host 127.0.0.1 --port P --workers N

except for one fix. uvicorn's multi-worker path (0.17.6 in Debian 12, and
upstream still: github.com/Kludex/uvicorn issue 3149) binds the listening
socket with proto 0, accepted sockets inherit it, and asyncio then skips
TCP_NODELAY, so every keep-alive request after the first waits ~40 ms for a
delayed ACK (measured here: 183 req/s, p50 44 ms). This peer binds the socket
itself with IPPROTO_TCP and hands it to uvicorn's own multi-process
supervisor, as that fix does. --workers 1 is plain uvicorn.run (asyncio builds
that listener from getaddrinfo, proto 6, so it is unaffected).
"""
import argparse
import glob
import json
import os
import pickle
import socket
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ENV_MODELS = "MYELIN_FASTAPI_MODELS"
JSON = "application/json"


def load_models(directory):
    models = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.pkl"))):
        with open(path, "rb") as f:
            models[os.path.basename(path)[:-len(".pkl")]] = pickle.load(f)
    if not models:
        raise SystemExit(f"fastapi_peer: no *.pkl models in {directory}")
    return models


def parse_input(body):
    """OIP v2 request body -> (id, float32 array shaped as the request says)."""
    req = json.loads(body)
    inputs = req["inputs"]
    if len(inputs) != 1:
        raise ValueError(f"expected 1 input, got {len(inputs)}")
    inp = inputs[0]
    if inp.get("datatype", "FP32") != "FP32":
        raise ValueError(f"input '{inp.get('name')}': datatype {inp['datatype']}, expected FP32")
    x = np.asarray(inp["data"], dtype=np.float32).reshape(inp["shape"])
    if x.ndim != 2:
        raise ValueError(f"input '{inp.get('name')}': shape {inp['shape']}, expected [N, F]")
    return req.get("id"), x


def create_app():
    from fastapi import FastAPI, Request, Response

    models = load_models(os.environ[ENV_MODELS])
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    def error(status, message):
        return Response(json.dumps({"error": message}), status_code=status, media_type=JSON)

    @app.get("/v2/health/ready")
    async def ready():
        return Response('{"ready":true}', media_type=JSON)

    @app.get("/v2/health/live")
    async def live():
        return Response('{"live":true}', media_type=JSON)

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request):
        est = models.get(name)
        if est is None:
            return error(404, f"model '{name}' is not served here")
        try:
            req_id, x = parse_input(await request.body())
            if x.shape[1] != est.n_features_in_:
                raise ValueError(f"input has {x.shape[1]} features, '{name}' takes "
                                 f"{est.n_features_in_}")
        except (ValueError, KeyError, TypeError, IndexError) as e:
            return error(400, f"{name}: bad request: {e}")
        proba = est.predict_proba(x)
        label = est.classes_.take(proba.argmax(axis=1))
        resp = {"model_name": name, "model_version": "1"}
        if req_id is not None:
            resp["id"] = req_id
        resp["outputs"] = [{"name": "label", "datatype": "INT64", "shape": [len(label)],
                            "data": label.astype(np.int64).tolist()},
                           {"name": "probabilities", "datatype": "FP32", "shape": list(proba.shape),
                            "data": proba.astype(np.float32).ravel().tolist()}]
        return Response(json.dumps(resp, separators=(",", ":")), media_type=JSON)

    return app


def versions():
    import importlib.util

    import fastapi
    import sklearn
    import uvicorn
    stack = {"python": sys.version.split()[0], "fastapi": fastapi.__version__,
             "uvicorn": uvicorn.__version__, "sklearn": sklearn.__version__,
             "numpy": np.__version__}
    for mod in ("uvloop", "httptools"):
        stack[mod] = importlib.util.find_spec(mod) is not None
    return stack


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="directory of NAME.pkl (bench/serve/make_models.py)")
    ap.add_argument("--port", type=int)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--versions", action="store_true", help="print the stack as JSON, exit")
    args = ap.parse_args()
    if args.versions:
        print(json.dumps(versions()))
        return
    if not args.models or not args.port:
        ap.error("--models and --port are required")
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    sys.dont_write_bytecode = True  # uvicorn imports this file again: no __pycache__ in bench/
    import uvicorn
    os.environ[ENV_MODELS] = os.path.abspath(args.models)
    load_models(os.environ[ENV_MODELS])  # fail here, not in every worker
    if HERE not in sys.path:
        sys.path.insert(0, HERE)  # workers import fastapi_peer; spawn copies sys.path
    config = uvicorn.Config("fastapi_peer:create_app", factory=True, host="127.0.0.1",
                            port=args.port, workers=args.workers, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    if args.workers == 1:
        server.run()
        sys.exit(0 if server.started else 1)
    from uvicorn.supervisors import Multiprocess
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as e:
        raise SystemExit(f"fastapi_peer: cannot listen on 127.0.0.1:{args.port}: {e.strerror}")
    sock.set_inheritable(True)
    Multiprocess(config, target=server.run, sockets=[sock]).run()


if __name__ == "__main__":
    main()
