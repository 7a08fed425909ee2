// Logs: newest first, filtered, a page at a time on the time-ordered request id; a request's detail shows its
// attempts and why it went where it went (the rule, the plan, the skipped targets, the decision attributes).
import { useEffect, useState } from "preact/hooks";
import { get, query } from "../api.js";
import { useT } from "../ctx.js";
import { ms, num, picoMoney, when } from "../format.js";

const FILTERS = ["key", "team", "provider", "model", "rule"];

// The request's archived bodies (redacted), fetched when asked for; the link opens the document itself.
function Payload({ row }) {
  const t = useT();
  const [doc, setDoc] = useState(null);
  const [error, setError] = useState("");
  const path = `/admin/logs/${encodeURIComponent(row.id)}/payload`;
  const show = () => get(path).then(setDoc, (e) => setError(e.message));
  return (
    <div class="payload" data-archive={row.archive}>
      <p>
        {t("archivedUntil")} {row.archive.split("/")[0]} ·{" "}
        <button type="button" onClick={show}>{t("showPayload")}</button>{" "}
        <a href={path} target="_blank" rel="noopener">{t("openPayload")}</a>
      </p>
      {error && <p class="error" role="alert">{error}</p>}
      {doc && (
        <>
          <h5>{t("requestBody")}</h5>
          <pre class="payload-request">{JSON.stringify(doc.request, null, 2)}</pre>
          <h5>{t("responseBody")}</h5>
          <pre class="payload-response">{JSON.stringify(doc.response, null, 2)}</pre>
          <p class="muted">{t("redacted")}: {Object.entries(doc.redacted || {}).map(([k, n]) => `${k} × ${n}`).join(", ") || t("none")}</p>
        </>
      )}
    </div>
  );
}

/** What an images or audio request was billed by besides tokens: images made, audio heard, characters spoken. */
function media(row, t) {
  const parts = [];
  if (row.images != null) parts.push(`${num(row.images)} ${t("images")}`);
  if (row.audio_ms != null) parts.push(`${(row.audio_ms / 1000).toFixed(1)} s ${t("audio")}`);
  if (row.characters != null) parts.push(`${num(row.characters)} ${t("characters")}`);
  return parts.join(" · ");
}

function Detail({ id }) {
  const t = useT();
  const [row, setRow] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    get(`/admin/logs/${encodeURIComponent(id)}`).then(setRow, (e) => setError(e.message));
  }, [id]);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!row) return <p class="muted">{t("loading")}</p>;
  const d = row.decision_attrs || {};
  const attempts = Array.isArray(row.attempt_log) ? row.attempt_log : [];
  return (
    <div class="card detail" data-request={row.id}>
      <div class="toolbar">
        <h3>{t("detail")} <code>{row.id}</code></h3>
        <a href="#/logs">{t("close")}</a>
      </div>
      <dl>
        <dt>{t("time")}</dt><dd>{when(row.ts_ms)}</dd>
        <dt>{t("status")}</dt><dd>{row.status} {row.error_code || ""} {row.limited_by ? `(${row.limited_by})` : ""}</dd>
        <dt>{t("key")}</dt><dd>{row.key_id || "–"} {row.team ? `· ${row.team}` : ""}</dd>
        <dt>{t("model")}</dt><dd>{row.requested_model || "–"} → {row.provider || "–"}/{row.model || "–"}</dd>
        <dt>{t("latency")}</dt><dd>{ms(row.latency_ms)} · {t("ttft")} {ms(row.ttft_ms)}</dd>
        <dt>{t("tokens")}</dt><dd>{num(row.prompt_tokens)} + {num(row.completion_tokens)} ({t("cachedTokens")} {num(row.cached_tokens)}, {t("reasoningTokens")} {num(row.reasoning_tokens)})</dd>
        {media(row, t) && <><dt>{t("billedBy")}</dt><dd data-media>{media(row, t)}</dd></>}
        <dt>{t("cost")}</dt><dd>{picoMoney(row.cost_pico, row.cost_currency)}{row.cost_estimated ? " (estimated)" : ""}</dd>
        {row.cache && <><dt>{t("cache")}</dt><dd data-cache={row.cache}>{row.cache}{row.cache === "hit" ? ` · ${t("saved")} ${picoMoney(row.cache_saved_pico, row.reporting_currency)}` : ""}</dd></>}
        <dt>{t("payload")}</dt><dd>{row.archive ? <Payload row={row} /> : <span class="muted">{t("notArchived")}</span>}</dd>
      </dl>
      <h4>{t("decision")}</h4>
      <p class="why">{t("decidedBy")} <b data-rule={row.rule_id || ""}>{row.rule_id || "–"}</b> {t("ofPolicy")} <code>{(row.policy_hash || "").slice(0, 12) || "–"}</code></p>
      <h5>{t("plan")}</h5>
      <ol class="plan">{(d.plan || []).map((p) => <li><code>{typeof p === "string" ? p : JSON.stringify(p)}</code></li>)}</ol>
      <h5>{t("skipped")}</h5>
      {(d.skipped || []).length ? <ul>{d.skipped.map((s) => <li><code>{typeof s === "string" ? s : JSON.stringify(s)}</code></li>)}</ul> : <p class="muted">{t("none")}</p>}
      <h5>{t("attempts")}</h5>
      <table>
        <thead><tr><th>#</th><th>{t("provider")}</th><th>{t("model")}</th><th>{t("outcome")}</th><th>{t("latency")}</th></tr></thead>
        <tbody>
          {attempts.map((a, i) => (
            <tr><td>{i + 1}</td><td>{a.provider}</td><td>{a.model}</td><td>{a.status} {a.error || "ok"}</td><td class="n">{ms(Math.round(a.ms))}</td></tr>
          ))}
        </tbody>
      </table>
      <h5>{t("attributes")}</h5>
      <pre>{JSON.stringify(d.attrs || d, null, 2)}</pre>
    </div>
  );
}

export function Logs({ arg }) {
  const t = useT();
  const [filters, setFilters] = useState({ endpoint: "api" });
  const [applied, setApplied] = useState({ endpoint: "api" });
  const [pages, setPages] = useState([undefined]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState("");
  const before = pages[pages.length - 1];
  useEffect(() => {
    setError("");
    get(`/admin/logs${query({ ...applied, before, limit: 50 })}`).then(setPage, (e) => setError(e.message));
  }, [applied, before]);
  const set = (k) => (e) => setFilters({ ...filters, [k]: e.currentTarget.value });
  const apply = (e) => {
    e.preventDefault();
    setPages([undefined]);
    setApplied({ ...filters });
  };
  return (
    <section>
      <h2>{t("logs")}</h2>
      <form class="filters" onSubmit={apply}>
        {FILTERS.map((f) => (
          <label>{t(f)} <input name={f} value={filters[f] || ""} onInput={set(f)} size="12" /></label>
        ))}
        <label>{t("status")}{" "}
          <select name="status" value={filters.status || ""} onChange={set("status")}>
            <option value="">{t("any")}</option>
            <option value="error">{t("onlyErrors")}</option>
            <option value="200">200</option>
            <option value="429">429</option>
          </select>
        </label>
        <label>{t("endpoint")}{" "}
          <select name="endpoint" value={filters.endpoint || ""} onChange={set("endpoint")}>
            <option value="api">{t("apiTraffic")}</option>
            <option value="chat">chat</option>
            <option value="messages">messages</option>
            <option value="responses">responses</option>
            <option value="embeddings">embeddings</option>
            <option value="images">images</option>
            <option value="models">models</option>
            <option value="">{t("everything")}</option>
          </select>
        </label>
        <label>{t("from")} <input type="datetime-local" name="from" onInput={(e) => setFilters({ ...filters, from: e.currentTarget.value ? Date.parse(e.currentTarget.value + "Z") : "" })} /></label>
        <label>{t("to")} <input type="datetime-local" name="to" onInput={(e) => setFilters({ ...filters, to: e.currentTarget.value ? Date.parse(e.currentTarget.value + "Z") : "" })} /></label>
        <button type="submit">{t("filter")}</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {arg && <Detail id={arg} />}
      {page && (
        <>
          <div class="scroll">
          <table class="logs">
            <thead><tr><th>{t("time")}</th><th>{t("status")}</th><th>{t("key")}</th><th>{t("team")}</th><th>{t("model")}</th><th>{t("provider")}</th><th>{t("rule")}</th><th>{t("latency")}</th><th>{t("tokens")}</th><th>{t("cost")}</th></tr></thead>
            <tbody>
              {page.data.map((r) => (
                <tr class={r.status >= 400 ? "failed" : ""} data-request={r.id}>
                  <td><a href={`#/logs/${encodeURIComponent(r.id)}`}>{when(r.ts_ms)}</a></td>
                  <td>{r.status}{r.error_code ? ` ${r.error_code}` : ""}</td>
                  <td>{r.key_id || "–"}</td>
                  <td>{r.team || "–"}</td>
                  <td>{r.requested_model || (r.endpoint ? "–" : <code>{r.method} {r.path}</code>)}</td>
                  <td>{r.provider ? `${r.provider}/${r.model}` : "–"}</td>
                  <td>{r.rule_id || "–"}</td>
                  <td class="n">{ms(r.latency_ms)}</td>
                  <td class="n">{num((r.prompt_tokens || 0) + (r.completion_tokens || 0))}</td>
                  <td class="n">{picoMoney(r.cost_pico, r.cost_currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          </div>
          <div class="toolbar">
            <button disabled={pages.length === 1} onClick={() => setPages([undefined])}>{t("newest")}</button>
            <button disabled={!page.next} onClick={() => setPages([...pages, page.next])}>{t("older")}</button>
          </div>
        </>
      )}
    </section>
  );
}
