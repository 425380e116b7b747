// ONNX Runtime peer of `myelin bench inference` (npm onnxruntime-node).
// Reads a JSON list of cases, prints {"version", "results": {name: {per_call_ns, cold_ns}}}.
// per_call_ns: mean of `block` back-to-back `await session.run(feeds)` calls, per sample;
// it includes the N-API call into ORT, ORT's Run, the output tensor and the promise.
// cold_ns: `InferenceSession.create(path)` + the first run (module already loaded).
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const results = {};
  const opts = {intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential'};
  for (const c of cases) {
    try {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = Math.sin(i) * 0.5;
      const cold = [];
      for (let r = 0; r < c.cold_reps; r++) {
        const t0 = process.hrtime.bigint();
        const s = await ort.InferenceSession.create(c.model, opts);
        await s.run({[s.inputNames[0]]: new ort.Tensor('float32', data, c.shape)});
        cold.push(Number(process.hrtime.bigint() - t0));
        if (s.release) await s.release();
      }
      const session = await ort.InferenceSession.create(c.model, opts);
      const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, c.shape)};
      for (let i = 0; i < 200; i++) await session.run(feeds);
      const per = [];
      for (let s = 0; s < c.samples; s++) {
        const t0 = process.hrtime.bigint();
        for (let k = 0; k < c.block; k++) await session.run(feeds);
        per.push(Number(process.hrtime.bigint() - t0) / c.block);
      }
      results[c.name] = {per_call_ns: per, cold_ns: cold};
    } catch (e) {
      results[c.name] = {error: String(e)};
    }
  }
  const pkg = require('onnxruntime-node/package.json');
  process.stdout.write('\n' + JSON.stringify({version: 'onnxruntime-node ' + pkg.version, results}) + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
