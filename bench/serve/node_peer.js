#!/usr/bin/env node
// Node.js + ONNX Runtime peer of `myelin bench serve` (Open Inference Protocol v2).
//
//   node bench/serve/node_peer.js --models OUTDIR --port P [--ort DIR]
//   node bench/serve/node_peer.js --versions     # one JSON line: the peer's stack
//
// Serves every OUTDIR/NAME.onnx written by bench/serve/make_models.py on
// 127.0.0.1:P (loopback only) with Node's own `http` module:
//
//   POST /v2/models/NAME/infer   OIP v2 JSON in, JSON out; the outputs are the
//                                graph's outputs by name ("label" INT64 [N] and
//                                "probabilities" FP32 [N, classes] for the
//                                models/sk2onnx.py classifiers: no ZipMap)
//   GET  /v2/health/ready        200 {"ready":true} (sessions exist by then)
//   GET  /v2/health/live         200 {"live":true}
//
// One InferenceSession per model, created at start-up with one intra-op and
// one inter-op thread and sequential execution, so the peer uses one core for
// inference like a single-worker server. One process: run more behind a
// balancer yourself if you want a multi-process Node figure.
//
// onnxruntime-node is found, in order: --ort DIR (a node_modules directory),
// build/model-npm/node_modules (scripts/setup-bench-peers installs it there),
// then Node's own resolution (NODE_PATH).
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const INFER = /^\/v2\/models\/([^/]+)\/infer$/;
const DTYPES = {float32: 'FP32', float64: 'FP64', int64: 'INT64', int32: 'INT32', bool: 'BOOL'};

function parseArgs(argv) {
  const args = {ort: null, models: null, port: 0, versions: false};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--versions') args.versions = true;
    else if (a === '--models' || a === '--port' || a === '--ort') args[a.slice(2)] = argv[++i];
    else throw new Error(`unknown argument '${a}'`);
  }
  args.port = Number(args.port);
  return args;
}

function loadOrt(dir) {
  const candidates = [dir, path.join(ROOT, 'build', 'model-npm', 'node_modules')].filter(Boolean);
  for (const d of candidates) {
    const p = path.join(d, 'onnxruntime-node');
    if (fs.existsSync(p)) return {ort: require(p), pkg: require(path.join(p, 'package.json'))};
  }
  try {
    return {ort: require('onnxruntime-node'), pkg: require('onnxruntime-node/package.json')};
  } catch (e) {
    throw new Error('onnxruntime-node not found: run scripts/setup-bench-peers, or pass --ort DIR');
  }
}

async function loadModels(ort, dir) {
  const opts = {intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential'};
  const models = new Map();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()) {
    const session = await ort.InferenceSession.create(path.join(dir, file), opts);
    if (session.inputNames.length !== 1) {
      throw new Error(`${file}: ${session.inputNames.length} inputs; this peer serves 1-input models`);
    }
    models.set(file.slice(0, -'.onnx'.length), session);
  }
  if (models.size === 0) throw new Error(`no *.onnx models in ${dir}`);
  return models;
}

// OIP v2 request body -> {id, tensor}. Data may be flat or nested.
function parseRequest(ort, body) {
  const req = JSON.parse(body);
  if (!Array.isArray(req.inputs) || req.inputs.length !== 1) throw new Error('expected 1 input');
  const inp = req.inputs[0];
  if ((inp.datatype || 'FP32') !== 'FP32') {
    throw new Error(`input '${inp.name}': datatype ${inp.datatype}, expected FP32`);
  }
  const shape = inp.shape;
  const data = Float32Array.from(Array.isArray(inp.data[0]) ? inp.data.flat(Infinity) : inp.data);
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new Error(`input '${inp.name}': ${data.length} values for shape [${shape}]`);
  }
  return {id: req.id, tensor: new ort.Tensor('float32', data, shape)};
}

function outputJson(name, t) {
  // BigInt64Array (int64 labels) -> Number: sklearn class labels are small.
  const data = t.type === 'int64' ? Array.from(t.data, Number) : Array.from(t.data);
  return {name, datatype: DTYPES[t.type] || t.type, shape: t.dims.map(Number), data};
}

function send(res, status, obj) {
  const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body)});
  res.end(body);
}

function makeHandler(ort, models) {
  async function infer(name, body, res) {
    const session = models.get(name);
    if (!session) return send(res, 404, {error: `model '${name}' is not served here`});
    let req;
    try {
      req = parseRequest(ort, body);
    } catch (e) {
      return send(res, 400, {error: `${name}: bad request: ${e.message}`});
    }
    let out;
    try {
      out = await session.run({[session.inputNames[0]]: req.tensor});
    } catch (e) {
      return send(res, 400, {error: `${name}: inference failed: ${e.message}`});
    }
    const resp = {model_name: name, model_version: '1'};
    if (req.id !== undefined) resp.id = req.id;
    resp.outputs = session.outputNames.map((n) => outputJson(n, out[n]));
    send(res, 200, resp);
  }

  return (req, res) => {
    const m = req.method === 'POST' && INFER.exec(req.url);
    if (m) {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        infer(decodeURIComponent(m[1]), Buffer.concat(chunks).toString('utf8'), res)
            .catch((e) => send(res, 500, {error: String(e)}));
      });
    } else if (req.method === 'GET' && req.url === '/v2/health/ready') {
      send(res, 200, '{"ready":true}');
    } else if (req.method === 'GET' && req.url === '/v2/health/live') {
      send(res, 200, '{"live":true}');
    } else {
      req.resume();
      send(res, 404, {error: `no route for ${req.method} ${req.url}`});
    }
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const {ort, pkg} = loadOrt(args.ort);
  if (args.versions) {
    console.log(JSON.stringify({node: process.versions.node, 'onnxruntime-node': pkg.version}));
    return;
  }
  if (!args.models || !(args.port > 0 && args.port < 65536)) {
    throw new Error('usage: node_peer.js --models OUTDIR --port P [--ort NODE_MODULES_DIR]');
  }
  const models = await loadModels(ort, args.models);
  const server = http.createServer(makeHandler(ort, models));
  server.keepAliveTimeout = 300000; // a benchmark connection may idle between phases
  server.headersTimeout = 301000;
  server.listen(args.port, '127.0.0.1');
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const names = [...models.keys()].join(', ');
  console.error(`node_peer: onnxruntime-node ${pkg.version}, ${names} on 127.0.0.1:${args.port}`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);
}

main().catch((e) => {
  console.error(`node_peer: ${e.message}`);
  process.exit(1);
});
