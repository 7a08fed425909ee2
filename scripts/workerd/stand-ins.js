// KV and D1 stand-ins in memory, named as workerd's bindings are (the worker crate checks constructor names).
export class KvNamespace {
  constructor(entries) { this.m = new Map(Object.entries(entries || {})); }
  async get(key, opts) {
    const v = this.m.get(key);
    if (v === undefined) return null;
    const type = typeof opts === "string" ? opts : opts && opts.type;
    return type === "json" ? JSON.parse(v) : v;
  }
  async put(key, value) { this.m.set(key, typeof value === "string" ? value : new TextDecoder().decode(value)); }
}
class D1Result { constructor() { this.results = []; this.success = true; this.meta = {}; } }
export class D1PreparedStatement {
  constructor(db, sql) { this.db = db; this.sql = sql; this.params = []; }
  bind(...params) { const s = new D1PreparedStatement(this.db, this.sql); s.params = params; return s; }
  async run() { this.db.rows++; return new D1Result(); }
  async all() { return new D1Result(); }
}
export class D1Database {
  constructor() { this.rows = 0; }
  prepare(sql) { return new D1PreparedStatement(this, sql); }
  // A log row goes with its rollups in one batch: count the rows.
  async batch(statements) {
    for (const s of statements) if (s.sql.startsWith("INSERT INTO request_logs")) this.rows++;
    return statements.map(() => new D1Result());
  }
}
