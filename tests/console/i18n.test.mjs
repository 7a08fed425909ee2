// The console's texts: every id a page asks for exists in English and in Chinese, and the two have the same ids.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { _TEXTS } from "../../console/src/i18n.js";

const SRC = new URL("../../console/src/", import.meta.url).pathname;

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(jsx?|mjs)$/.test(e.name) ? [join(dir, e.name)] : []);
}

test("English and Chinese have the same texts", () => {
  assert.deepEqual(Object.keys(_TEXTS.zh).sort(), Object.keys(_TEXTS.en).sort());
  for (const [id, text] of Object.entries(_TEXTS.zh)) assert.ok(text && text !== _TEXTS.en[id] || id === "title", `zh ${id}`);
});

test("every text a page asks for exists", () => {
  const asked = new Set();
  for (const file of sources(SRC)) {
    for (const m of readFileSync(file, "utf8").matchAll(/\bt\("([A-Za-z0-9]+)"\)/g)) asked.add(m[1]);
  }
  assert.ok(asked.size > 40, `only ${asked.size} ids found`);
  const missing = [...asked].filter((id) => !(id in _TEXTS.en));
  assert.deepEqual(missing, []);
});

test("page and group names used through t(variable) exist too", () => {
  for (const id of ["overview", "logs", "keys", "policy", "health", "provider", "model", "rule", "key", "team", "last24h", "last7d", "last30d"]) {
    assert.ok(id in _TEXTS.en && id in _TEXTS.zh, id);
  }
});
