// Overview: requests, errors, latency and time to first token, tokens and cost over a time range, as charts
// read from the usage rollups (never the raw log), and a breakdown by provider, model, rule, key or team.
import { useEffect, useState } from "preact/hooks";
import { get, query } from "../api.js";
import { Chart } from "../chart.jsx";
import { useT } from "../ctx.js";
import { money, ms, num, pct, picoToUnits } from "../format.js";

const HOUR = 3_600_000;
const RANGES = { last24h: [24 * HOUR, "hour"], last7d: [7 * 24 * HOUR, "hour"], last30d: [30 * 24 * HOUR, "day"] };
const GROUPS = ["provider", "model", "rule", "key", "team"];

function bounds(range) {
  const [span, step] = RANGES[range];
  const to = Math.ceil((Date.now() + 1) / HOUR) * HOUR;
  return { from: to - span, to, step };
}

function Totals({ totals }) {
  const t = useT();
  if (!totals.length) return <p class="muted">{t("noData")}</p>;
  return (
    <div class="tiles">
      {totals.map((s) => (
        <>
          <div class="tile"><span>{t("requests")}</span><b data-total="requests">{num(s.requests)}</b></div>
          <div class="tile"><span>{t("errorRate")}</span><b data-total="error_rate">{pct(s.errors, s.requests)}</b></div>
          <div class="tile"><span>{t("latency")} p50 / p95</span><b>{ms(s.latency_ms.p50)} / {ms(s.latency_ms.p95)}</b></div>
          <div class="tile"><span>{t("ttft")} p50 / p95</span><b>{ms(s.ttft_ms.p50)} / {ms(s.ttft_ms.p95)}</b></div>
          <div class="tile"><span>{t("tokens")}</span><b data-total="tokens">{num(s.prompt_tokens + s.completion_tokens)}</b></div>
          <div class="tile"><span>{t("cost")}</span><b data-total="cost">{money(s.cost, s.currency)}</b></div>
        </>
      ))}
    </div>
  );
}

export function Overview() {
  const t = useT();
  const [range, setRange] = useState("last24h");
  const [group, setGroup] = useState("provider");
  const [series, setSeries] = useState(null);
  const [table, setTable] = useState(null);
  const [error, setError] = useState("");
  const { from, to, step } = bounds(range);
  useEffect(() => {
    setError("");
    get(`/admin/usage${query({ from, to, group_by: step })}`).then(setSeries, (e) => setError(e.message));
  }, [range]);
  useEffect(() => {
    get(`/admin/usage${query({ from, to, group_by: group })}`).then(setTable, (e) => setError(e.message));
  }, [range, group]);

  let charts = null;
  if (series && series.rows.length) {
    // Every hour (or day) of the range, the ones without requests as zero (latency: a gap).
    const width = step === "day" ? 24 * HOUR : HOUR;
    const byStart = new Map(series.rows.map((r) => [Date.parse(r[step]), r]));
    const starts = [];
    for (let t = Math.floor(from / width) * width; t < to; t += width) starts.push(t);
    const empty = { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost_pico: "0", latency_ms: {}, ttft_ms: {} };
    const rows = starts.map((t) => byStart.get(t) || { ...empty, currency: series.rows[0].currency });
    const x = starts.map((t) => t / 1000);
    const pick = (f) => rows.map((r) => f(r) ?? null);
    charts = (
      <div class="charts">
        <Chart title={t("requests")} x={x} series={[{ label: t("requests"), values: pick((r) => r.requests) }, { label: t("errors"), values: pick((r) => r.errors) }]} />
        <Chart title={`${t("latency")} / ${t("ttft")} (ms)`} x={x} series={[
          { label: `${t("latency")} p50`, values: pick((r) => r.latency_ms.p50) },
          { label: `${t("latency")} p95`, values: pick((r) => r.latency_ms.p95) },
          { label: `${t("ttft")} p50`, values: pick((r) => r.ttft_ms.p50) },
        ]} />
        <Chart title={t("tokens")} x={x} series={[{ label: t("promptTokens"), values: pick((r) => r.prompt_tokens) }, { label: t("completionTokens"), values: pick((r) => r.completion_tokens) }]} />
        <Chart title={`${t("cost")} (${rows[0].currency})`} x={x} series={[{ label: t("cost"), values: pick((r) => picoToUnits(r.cost_pico)) }]} />
      </div>
    );
  }
  return (
    <section>
      <div class="toolbar">
        <h2>{t("overview")}</h2>
        <label>{t("range")}{" "}
          <select value={range} onChange={(e) => setRange(e.currentTarget.value)} name="range">
            {Object.keys(RANGES).map((r) => <option value={r}>{t(r)}</option>)}
          </select>
        </label>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {series ? <Totals totals={series.totals} /> : <p class="muted">{t("loading")}</p>}
      {charts}
      <div class="toolbar">
        <h3>{t("breakdown")}</h3>
        <select value={group} onChange={(e) => setGroup(e.currentTarget.value)} name="group">
          {GROUPS.map((g) => <option value={g}>{t(g)}</option>)}
        </select>
      </div>
      {table && (
        <table class="breakdown">
          <thead><tr><th>{t(group)}</th><th>{t("requests")}</th><th>{t("errorRate")}</th><th>p50 / p95</th><th>{t("ttft")} p50</th><th>{t("tokens")}</th><th>{t("cost")}</th></tr></thead>
          <tbody>
            {table.rows.map((r) => (
              <tr data-group={r[group]}>
                <td>{r[group] || "–"}</td>
                <td class="n">{num(r.requests)}</td>
                <td class="n">{pct(r.errors, r.requests)}</td>
                <td class="n">{ms(r.latency_ms.p50)} / {ms(r.latency_ms.p95)}</td>
                <td class="n">{ms(r.ttft_ms.p50)}</td>
                <td class="n">{num(r.prompt_tokens + r.completion_tokens)}</td>
                <td class="n">{money(r.cost, r.currency)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
