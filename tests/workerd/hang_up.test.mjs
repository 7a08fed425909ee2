// A client that hangs up before its answer, in Miniflare (workerd): the Worker must cancel its upstream call and
// log a 499 row. workerd notices a client that leaves over plain HTTP only when it next writes to it, so the client
// here is another Worker calling the gateway through a service binding and aborting its fetch: workerd then aborts
// the gateway's `request.signal` (the `enable_request_signal` compatibility flag), as Cloudflare's edge does when
// an HTTP client leaves. Run: node --test tests/workerd/ (after scripts/build-worker.sh).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { Miniflare, Log, LogLevel } from "miniflare";

const KEY = "gw-" + "b".repeat(64);
const UPSTREAM_MS = 3000;
let mf, upstream;
// What the slow upstream saw: requests that arrived, and those whose caller left before the answer.
const seen = { requests: 0, abandoned: 0 };

// Calls the gateway through its service binding and aborts after `?leave_ms` (never without it).
const CLIENT = `
export default {
  async fetch(request, env) {
    const leave = Number(new URL(request.url).searchParams.get("leave_ms") || 0);
    const controller = new AbortController();
    if (leave) setTimeout(() => controller.abort(), leave);
    try {
      const res = await env.GATEWAY.fetch("http://gateway/v1/chat/completions", {
        method: "POST", body: await request.text(), signal: controller.signal,
        headers: { authorization: request.headers.get("authorization"), "content-type": "application/json" },
      });
      return new Response(await res.text(), { status: res.status });
    } catch (e) {
      return new Response("left: " + e.name, { status: 299 });
    }
  },
};`;

before(async () => {
  upstream = createServer((req, res) => {
    seen.requests++;
    const timer = setTimeout(() => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({
        id: "chatcmpl-slow", object: "chat.completion", created: 0, model: "gpt-4o-mini",
        choices: [{ index: 0, message: { role: "assistant", content: "late" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
      }));
    }, UPSTREAM_MS);
    res.on("close", () => {
      if (!res.writableFinished) {
        clearTimeout(timer);
        seen.abandoned++;
      }
    });
  });
  await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${upstream.address().port}/v1`;
  const wrangler = readFileSync("wrangler.toml", "utf8");
  const flags = JSON.parse(wrangler.match(/^compatibility_flags\s*=\s*(\[.*\])/m)[1]);
  mf = new Miniflare({
    log: new Log(LogLevel.WARN),
    cf: false,
    workers: [
      {
        name: "client", modules: true, script: CLIENT, compatibilityDate: "2026-04-01",
        serviceBindings: { GATEWAY: "gateway" },
      },
      {
        // The flags wrangler.toml deploys with: the test fails if the flag is dropped from it.
        name: "gateway", modules: true, scriptPath: "src/workers/build/index.js", compatibilityDate: "2026-04-01",
        compatibilityFlags: flags,
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        bindings: { OPENAI_BASE_URL: base, OPENAI_API_KEY: "sk-upstream", UPSTREAM_TIMEOUT_MS: "10000" },
        kvNamespaces: ["API_KEYS"], d1Databases: ["DB"],
      },
    ],
  });
  const db = await mf.getD1Database("DB", "gateway");
  for (const file of readdirSync("migrations").filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(`migrations/${file}`, "utf8").replace(/--.*$/gm, "");
    for (const stmt of sql.split(";").map((s) => s.trim()).filter(Boolean)) await db.prepare(stmt).run();
  }
  const kv = await mf.getKVNamespace("API_KEYS", "gateway");
  const hash = createHash("sha256").update(KEY).digest("hex");
  await kv.put(`key/${hash}`, JSON.stringify({ id: "key_hangup", name: "hang-up-test", created_at_ms: 0 }));
});

after(async () => {
  await mf?.dispose();
  upstream?.close();
});

async function rowFor(model) {
  const db = await mf.getD1Database("DB", "gateway");
  for (let i = 0; i < 100; i++) {
    const row = await db.prepare("SELECT * FROM request_logs WHERE requested_model = ?1").bind(model).first();
    if (row) return row;
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

function call(model, leaveMs) {
  return mf.dispatchFetch(`http://client/?leave_ms=${leaveMs}`, {
    method: "POST", headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  });
}

test("a client that hangs up cancels the upstream call and leaves a 499 row", async () => {
  const before = { ...seen };
  const t0 = Date.now();
  const res = await call("openai/gpt-4o-mini", 500);
  assert.equal(res.status, 299, await res.text()); // the client's fetch was aborted
  const row = await rowFor("openai/gpt-4o-mini");
  assert.ok(row, "no log row for a request whose client hung up");
  assert.deepEqual([row.status, row.error_code, row.provider], [499, "client_closed", "openai"]);
  assert.ok(row.latency_ms < UPSTREAM_MS - 1000, `latency ${row.latency_ms} ms: the gateway waited for the upstream`);
  assert.ok(Date.now() - t0 < UPSTREAM_MS, "the row came only after the upstream answered");
  assert.equal(seen.requests, before.requests + 1);
  // The upstream connection is closed once the gateway gives up (not after its answer).
  for (let i = 0; i < 40 && seen.abandoned === before.abandoned; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.abandoned, before.abandoned + 1, "the upstream call went on after the client left");
});

test("a client that waits gets the answer and a 200 row", async () => {
  const res = await call("gpt-4o-mini", 0);
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(await res.text()).choices[0].message.content, "late");
  const row = await rowFor("gpt-4o-mini");
  assert.deepEqual([row.status, row.error_code], [200, null]);
});
