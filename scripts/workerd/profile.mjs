// Samples the gateway Worker's CPU through workerd's inspector while a load runs, and prints where the time goes
// (self time and total time per function, wasm functions by their Rust names). Used by bench-workerd.py --profile.
//   node --experimental-websocket profile.mjs <inspector host:port> <service> <seconds> <out.cpuprofile>
import { writeFileSync } from "node:fs";
const [addr, service, seconds, out] = process.argv.slice(2);
const ws = new WebSocket(`ws://${addr}/${service}`);
let id = 0;
const waiting = new Map();
const send = (method, params = {}) => new Promise((resolve, reject) => {
  const n = ++id;
  waiting.set(n, { resolve, reject });
  ws.send(JSON.stringify({ id: n, method, params }));
});
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  const w = waiting.get(msg.id);
  if (!w) return;
  waiting.delete(msg.id);
  msg.error ? w.reject(new Error(JSON.stringify(msg.error))) : w.resolve(msg.result);
};
await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 50 });
await send("Profiler.start");
console.error("profiling");
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
const { profile } = await send("Profiler.stop");
writeFileSync(out, JSON.stringify(profile));
// Self and total time per function name.
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
const hits = new Map();
for (const s of profile.samples) hits.set(s, (hits.get(s) || 0) + 1);
const self = new Map(), total = new Map();
let all = 0;
for (const [nid, count] of hits) {
  all += count;
  const name = (n) => n.callFrame.functionName || `(anonymous ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber})`;
  const leaf = nodes.get(nid);
  self.set(name(leaf), (self.get(name(leaf)) || 0) + count);
  const seen = new Set();
  for (let cur = nid; cur !== undefined; cur = parent.get(cur)) {
    const nm = name(nodes.get(cur));
    if (seen.has(nm)) continue;
    seen.add(nm);
    total.set(nm, (total.get(nm) || 0) + count);
  }
}
const top = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k);
const pct = (c) => (100 * c / all).toFixed(1).padStart(5);
console.log(`${all} samples`);
console.log("self:");
for (const [n, c] of top(self, 45)) console.log(`  ${pct(c)}%  ${n.slice(0, 150)}`);
console.log("total:");
for (const [n, c] of top(total, 70)) console.log(`  ${pct(c)}%  ${n.slice(0, 150)}`);
ws.close();
