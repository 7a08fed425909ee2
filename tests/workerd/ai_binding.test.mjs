// The Workers AI *binding* path, in Miniflare (workerd) with a fake `AI` binding: `wrangler dev` cannot run
// the real binding offline. Run: node --test tests/workerd/ (after scripts/build-worker.sh).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { Miniflare, Log, LogLevel } from "miniflare";

const KEY = "gw-" + "a".repeat(64);
const MODEL = "@cf/meta/llama-3.1-8b-instruct";
let mf;

// Behaves like env.AI.run (providers.md §6.1): native answers, raw SSE streams, thrown AiErrors.
// One teal pixel, as the mock provider draws it.
const PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGPQq70MAAJbAX9HJs0rAAAAAElFTkSuQmCC";
const FAKE_AI = `
const PNG_B64 = "${PNG_B64}";
class Ai {
  async run(model, input) {
    if (model.includes("busy")) throw new Error("AiError: 3040: Capacity temporarily exceeded, please try again.");
    // Speech and Whisper (providers-more.md §6.3, §6.4): aura answers a stream of audio bytes, melotts base64.
    if (model.includes("aura")) return new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("ID3" + input.text)); c.close(); } });
    if (model.includes("melotts")) return { audio: btoa("ID3" + input.prompt) };
    if (model.includes("whisper")) return { text: "heard " + atob(input.audio).length + " bytes", transcription_info: { language: "en", duration: 1.5 } };
    if (input.text) return { shape: [input.text.length, 3], data: input.text.map(() => [0.1, 0.2, 0.3]) };
    // Text-to-image (providers-more.md §6.2): flux answers base64 JSON, Stable Diffusion a stream of PNG bytes.
    if (typeof input.prompt === "string") {
      const png = Uint8Array.from(atob(PNG_B64), (c) => c.charCodeAt(0));
      if (model.includes("flux")) return { image: PNG_B64 };
      return new ReadableStream({ start(c) { c.enqueue(png.slice(0, 20)); c.enqueue(png.slice(20)); c.close(); } });
    }
    if (!Array.isArray(input.messages)) throw new Error("AiError: 5004: messages must be an array");
    if (input.stream) {
      const events = ['data: {"response":"Hi","p":"pad"}\\n\\n', 'data: {"response":" there"}\\n\\n',
        'data: {"response":"","usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\\n\\n', 'data: [DONE]\\n\\n'];
      return new ReadableStream({ start(c) { for (const e of events) c.enqueue(new TextEncoder().encode(e)); c.close(); } });
    }
    const last = input.messages[input.messages.length - 1].content;
    return { response: "fake answer to " + last + " from " + model, usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 } };
  }
}
export default function () { return new Ai(); }`;

before(async () => {
  mf = new Miniflare({
    log: new Log(LogLevel.WARN),
    cf: false,
    workers: [
      {
        name: "gateway", modules: true, scriptPath: "src/workers/build/index.js", compatibilityDate: "2026-04-01",
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        bindings: { WORKERS_AI_BINDING: "AI" },
        kvNamespaces: ["API_KEYS"], d1Databases: ["DB"],
        wrappedBindings: { AI: { scriptName: "fake-ai" } },
      },
      { name: "fake-ai", modules: true, script: FAKE_AI },
    ],
  });
  // Every migration, in order, as wrangler would apply them.
  const db = await mf.getD1Database("DB");
  for (const file of readdirSync("migrations").filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(`migrations/${file}`, "utf8").replace(/--.*$/gm, "");
    for (const stmt of sql.split(";").map((s) => s.trim()).filter(Boolean)) await db.prepare(stmt).run();
  }
  const kv = await mf.getKVNamespace("API_KEYS");
  const hash = createHash("sha256").update(KEY).digest("hex");
  await kv.put(`key/${hash}`, JSON.stringify({ id: "key_binding", name: "binding-test", created_at_ms: 0 }));
});

after(() => mf?.dispose());

function post(path, body) {
  return mf.dispatchFetch(`http://gateway${path}`, {
    method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body),
  });
}

async function logRow(id) {
  const db = await mf.getD1Database("DB");
  for (let i = 0; i < 50; i++) {
    const row = await db.prepare("SELECT * FROM request_logs WHERE id = ?1").bind(id).first();
    if (row) return row;
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

test("a chat through the AI binding is an OpenAI chat.completion with a log row", async () => {
  const res = await post("/v1/chat/completions", { model: `workers_ai/${MODEL}`, messages: [{ role: "user", content: "ping" }] });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-gateway-provider"), "workers_ai");
  const body = await res.json();
  assert.equal(body.object, "chat.completion");
  assert.equal(body.choices[0].message.content, `fake answer to ping from ${MODEL}`);
  assert.equal(body.choices[0].finish_reason, "stop");
  const row = await logRow(res.headers.get("x-request-id"));
  assert.equal(row.status, 200);
  assert.equal(row.total_tokens, 11);
});

test("a stream from the AI binding arrives as OpenAI chunks ending in [DONE]", async () => {
  const res = await post("/v1/chat/completions", {
    model: `workers_ai/${MODEL}`, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }],
  });
  assert.equal(res.status, 200);
  const events = (await res.text()).trim().split("\n\n").map((e) => e.replace(/^data: /, ""));
  assert.equal(events.at(-1), "[DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? "").join("");
  assert.equal(text, "Hi there");
  assert.equal(chunks.at(-1).usage.total_tokens, 7);
  assert.ok(chunks.every((c) => !("p" in c)));
});

test("an AiError thrown by the binding becomes the matching OpenAI error", async () => {
  const res = await post("/v1/chat/completions", { model: "workers_ai/@cf/busy/model", messages: [{ role: "user", content: "x" }] });
  assert.equal(res.status, 429);
  const body = await res.json();
  assert.equal(body.error.type, "rate_limit_error");
});

test("embeddings through the AI binding", async () => {
  const res = await post("/v1/embeddings", { model: "workers_ai/@cf/baai/bge-m3", input: ["a", "b"] });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body.data.map((d) => d.embedding.length), [3, 3]);
});

for (const model of ["@cf/black-forest-labs/flux-1-schnell", "@cf/stabilityai/stable-diffusion-xl-base-1.0"]) {
  test(`an image from the AI binding (${model.split("/")[2]}) is OpenAI's b64_json with a row counting it`, async () => {
    const res = await post("/v1/images/generations", { model: `workers_ai/${model}`, prompt: "a lighthouse" });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.data[0].b64_json, PNG_B64, "the picture's bytes, whole, whether JSON or a byte stream");
    const row = await logRow(res.headers.get("x-request-id"));
    assert.equal(row.endpoint, "images");
    assert.equal(row.images, 1);
  });
}

for (const model of ["@cf/deepgram/aura-1", "@cf/myshell-ai/melotts"]) {
  test(`speech from the AI binding (${model.split("/")[2]}) is audio bytes with a row counting the characters`, async () => {
    const res = await post("/v1/audio/speech", { model: `workers_ai/${model}`, voice: "angus", input: "Hello" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "audio/mpeg");
    assert.equal(new TextDecoder().decode(await res.arrayBuffer()), "ID3Hello");
    const row = await logRow(res.headers.get("x-request-id"));
    assert.equal(row.endpoint, "speech");
    assert.equal(row.characters, 5);
  });
}

test("a transcription through the AI binding: the upload goes to Whisper as base64, the row has its length", async () => {
  const form = new FormData();
  form.append("model", "workers_ai/@cf/openai/whisper-large-v3-turbo");
  form.append("file", new Blob([new Uint8Array(3000)], { type: "audio/wav" }), "a.wav");
  // Encoded here: Miniflare's own fetch does not serialise this runtime's FormData.
  const encoded = new Request("http://x/", { method: "POST", body: form });
  const res = await mf.dispatchFetch("http://gateway/v1/audio/transcriptions", {
    method: "POST", body: new Uint8Array(await encoded.arrayBuffer()),
    headers: { authorization: `Bearer ${KEY}`, "content-type": encoded.headers.get("content-type") },
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.deepEqual(body, { text: "heard 3000 bytes" });
  const row = await logRow(res.headers.get("x-request-id"));
  assert.equal(row.endpoint, "transcriptions");
  assert.equal(row.audio_ms, 1500);
});

