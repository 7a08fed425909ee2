// Health: per provider error rate, p50 latency and whether it is up (the snapshot computed from the log, by the
// Cron Trigger on Workers and a thread natively), the models cooling down, and the log writer's counters.
import { useEffect, useState } from "preact/hooks";
import { get } from "../api.js";
import { useT } from "../ctx.js";
import { ms, num, when } from "../format.js";

export function Health() {
  const t = useT();
  const [status, setStatus] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const load = () => get("/admin/status").then(setStatus, (e) => setError(e.message));
    load();
    const timer = setInterval(load, 10_000);
    return () => clearInterval(timer);
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!status) return <p class="muted">{t("loading")}</p>;
  const snapshot = status.health || { providers: {} };
  const cooling = Object.entries(status.cooling_down_seconds || {});
  return (
    <section>
      <h2>{t("health")}</h2>
      <p class="muted">{t("snapshotAt")}: <span data-snapshot-at>{snapshot.at_ms ? when(snapshot.at_ms) : t("none")}</span></p>
      <table class="health">
        <thead><tr><th>{t("provider")}</th><th>{t("status")}</th><th>{t("attempts")}</th><th>{t("errorRate")}</th><th>{t("latency")} p50</th></tr></thead>
        <tbody>
          {Object.entries(snapshot.providers || {}).map(([name, h]) => (
            <tr data-provider={name} class={h.up ? "" : "failed"}>
              <td>{name}</td><td>{h.up ? t("up") : t("down")}</td><td class="n">{num(h.attempts)}</td>
              <td class="n">{(100 * h.error_rate).toFixed(1)}%</td><td class="n">{ms(h.p50_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>{t("cooldowns")}</h3>
      {cooling.length ? (
        <ul>{cooling.map(([target, s]) => <li><code>{target}</code> {s} {t("seconds")}</li>)}</ul>
      ) : <p class="muted">{t("none")}</p>}
      <h3>{t("providers")}</h3>
      <ul>
        {(status.providers.configured || []).map((p) => <li><code>{p.name}</code> ({p.dialect}, {p.models} models{p.default ? ", default" : ""})</li>)}
        {(status.providers.unconfigured || []).map((p) => <li class="muted"><code>{p.name}</code>: {p.why}</li>)}
      </ul>
    </section>
  );
}
