// Runs the models probe_ort_conventions.py wrote through onnxruntime-node and
// prints each output (see that script).
//   node probe_ort_conventions.js DIR NPM_DIR
const path = require('path');
const fs = require('fs');
const dir = process.argv[2];
const ort = require(path.resolve(process.argv[3], 'node_modules/onnxruntime-node'));
const version = require(path.resolve(process.argv[3], 'node_modules/onnxruntime-node/package.json')).version;

(async () => {
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json')));
  const out = {ort_version: version};
  for (const [name, x] of Object.entries(cases)) {
    try {
      const s = await ort.InferenceSession.create(path.join(dir, name + '.onnx'));
      const feed = {X: new ort.Tensor('float32', Float32Array.from(x.flat()), [x.length, 2])};
      const r = await s.run(feed);
      out[name] = {};
      for (const [k, t] of Object.entries(r)) {
        out[name][k] = {dims: t.dims, data: Array.from(t.data, (v) => typeof v === 'bigint' ? Number(v) : v)};
      }
    } catch (e) {
      out[name] = {error: String(e.message || e).split('\n')[0]};
    }
  }
  for (const [k, v] of Object.entries(out)) console.log(k, JSON.stringify(v));
})();
