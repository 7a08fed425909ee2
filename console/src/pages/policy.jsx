// Policy: the active policy's hash and load time, its rules as published, the history with a rollback button,
// and an explain box (a request in, the rule and the plan the gateway would use out).
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../api.js";
import { useT } from "../ctx.js";
import { when } from "../format.js";

function Explain() {
  const t = useT();
  const [model, setModel] = useState("gpt-4o-mini");
  const [prompt, setPrompt] = useState("");
  const [extra, setExtra] = useState("{}");
  const [result, setResult] = useState(null);
  const [error, setError] = useState("");
  const submit = (e) => {
    e.preventDefault();
    setError("");
    let more = {};
    try {
      more = JSON.parse(extra || "{}");
    } catch (err) {
      setError(`JSON: ${err.message}`);
      return;
    }
    post("/admin/explain", { model, messages: [{ role: "user", content: prompt }], ...more }).then(setResult, (err) => setError(err.message));
  };
  return (
    <form class="card form explain" onSubmit={submit} name="explain">
      <h3>{t("explain")}</h3>
      <p class="muted">{t("explainHelp")}</p>
      <label>{t("model")} <input name="model" value={model} onInput={(e) => setModel(e.currentTarget.value)} /></label>
      <label class="wide">{t("prompt")} <textarea name="prompt" rows="3" value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} /></label>
      <label class="wide">JSON (max_tokens, stream, tools, …) <input name="extra" value={extra} onInput={(e) => setExtra(e.currentTarget.value)} /></label>
      <button type="submit">{t("explain")}</button>
      {error && <p class="error" role="alert">{error}</p>}
      {result && (
        <div class="result" data-rule={result.rule}>
          <p>{t("decidedBy")} <b>{result.rule}</b>{result.deny ? ` → deny ${result.deny.status} "${result.deny.message}"` : ""}</p>
          {!result.deny && <ol class="plan">{(result.plan || []).map((p) => <li><code>{p}</code></li>)}</ol>}
          {(result.skipped || []).length > 0 && <><h5>{t("skipped")}</h5><ul>{result.skipped.map((s) => <li><code>{s}</code></li>)}</ul></>}
          <details>
            <summary>{t("rules")}</summary>
            <ul class="trace">
              {(result.trace || []).map((r) => (
                <li class={r.matched ? "matched" : ""}><code>{r.id}</code> {r.matched ? "✓" : "✗"} {r.checks.map((c) => <span class="check">{c.condition} = {c.value} → {String(c.result)}</span>)}</li>
              ))}
            </ul>
          </details>
          <details><summary>{t("attributes")}</summary><pre>{JSON.stringify(result.attrs, null, 2)}</pre></details>
        </div>
      )}
    </form>
  );
}

export function PolicyPage() {
  const t = useT();
  const [policy, setPolicy] = useState(null);
  const [error, setError] = useState("");
  const load = () => get("/admin/policy").then(setPolicy, (e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);
  const rollback = (hash) => {
    if (!confirm(t("confirmRollback"))) return;
    post("/admin/policy/rollback", { to: hash }).then(load, (e) => setError(e.message));
  };
  return (
    <section>
      <h2>{t("policy")}</h2>
      {error && <p class="error" role="alert">{error}</p>}
      {policy && (
        <div class="card">
          <h3>{t("activePolicy")}</h3>
          <dl>
            <dt>hash</dt><dd><code data-active-hash>{policy.active.hash}</code>{policy.published ? "" : ` (${t("builtin")})`}</dd>
            <dt>{t("publishedAt")}</dt><dd data-published-at>{policy.published_at_ms ? when(policy.published_at_ms) : "–"}</dd>
            <dt>{t("loadedAt")}</dt><dd>{when(policy.active.loaded_at_ms)}</dd>
            <dt>{t("rules")}</dt><dd>{policy.active.rules ?? "–"}</dd>
            {policy.active.last_error && <><dt>{t("lastError")}</dt><dd class="error">{policy.active.last_error}</dd></>}
          </dl>
          <h3>{t("source")}</h3>
          <pre class="policy-text">{(policy.rules || []).map((r) => `${r.text}\n`).join("")}</pre>
          <h3>{t("history")}</h3>
          {(policy.history || []).length ? (
            <ol class="history">
              {policy.history.map((h) => (
                <li data-hash={h.hash}>
                  <code>{h.hash.slice(0, 16)}</code>{" "}
                  <span class="muted">{h.active_since_ms ? `${t("activeFrom")} ${when(h.active_since_ms)}` : ""}</span>{" "}
                  <button onClick={() => rollback(h.hash)}>{t("rollback")}</button>
                </li>
              ))}
            </ol>
          ) : <p class="muted">{t("none")}</p>}
          {(policy.log || []).length > 0 && (
            <details>
              <summary>{t("changes")}</summary>
              <table class="changes">
                <tbody>{policy.log.map((a) => <tr><td>{when(a.at_ms)}</td><td>{a.by}</td><td><code>{a.hash.slice(0, 16)}</code></td></tr>)}</tbody>
              </table>
            </details>
          )}
        </div>
      )}
      <Explain />
    </section>
  );
}
