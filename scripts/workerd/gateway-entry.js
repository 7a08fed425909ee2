// The Worker as built, with KV (API_KEYS, POLICY) and D1 (DB) replaced by in-memory stand-ins seeded from the
// SEED binding, for serving the bundle with workerd alone (scripts/bench-workerd.py).
import Gateway from "./index.js";
// The limit counters' Durable Object class, for `--limits` runs.
export { Limiter } from "./index.js";
import { KvNamespace, D1Database } from "./stand-ins.js";
let stores = null;
function standIns(env) {
  if (!stores) {
    const seed = JSON.parse(env.SEED);
    stores = { API_KEYS: new KvNamespace(seed.keys), POLICY: new KvNamespace(seed.policy), DB: new D1Database() };
  }
  return stores;
}
export default class extends Gateway {
  constructor(ctx, env) { super(ctx, { ...env, ...standIns(env) }); }
}
