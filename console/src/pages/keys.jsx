// Keys and teams: create (the key shown once), limits, budgets, allow-lists, revoke; spend today and this month.
import { useEffect, useState } from "preact/hooks";
import { get, patch, post } from "../api.js";
import { useT } from "../ctx.js";
import { money, num, when } from "../format.js";

/** The limits object the admin API takes, from the form's fields (empty fields: unlimited). */
function limitsOf(f) {
  const n = (v) => (v === undefined || v === "" ? undefined : Number(v));
  const limits = {};
  if (n(f.rpm) !== undefined) limits.requests_per_minute = n(f.rpm);
  if (n(f.tpm) !== undefined) limits.tokens_per_minute = n(f.tpm);
  if (n(f.streams) !== undefined) limits.concurrent_streams = n(f.streams);
  if (f.day || f.month) {
    limits.budget = { currency: f.currency || "USD" };
    if (f.day) limits.budget.day = f.day;
    if (f.month) limits.budget.month = f.month;
  }
  return limits;
}

function LimitFields({ f, set }) {
  const t = useT();
  const field = (name, label, attrs = {}) => (
    <label>{label} <input name={name} value={f[name] || ""} onInput={(e) => set({ ...f, [name]: e.currentTarget.value })} {...attrs} /></label>
  );
  return (
    <>
      {field("rpm", t("rpm"), { type: "number", min: "1", size: "6" })}
      {field("tpm", t("tpm"), { type: "number", min: "1", size: "8" })}
      {field("streams", t("streams"), { type: "number", min: "1", size: "4" })}
      {field("day", t("budgetDay"), { inputmode: "decimal", size: "8" })}
      {field("month", t("budgetMonth"), { inputmode: "decimal", size: "8" })}
      <label>{t("currency")}{" "}
        <select name="currency" value={f.currency || "USD"} onChange={(e) => set({ ...f, currency: e.currentTarget.value })}>
          <option>USD</option><option>CNY</option>
        </select>
      </label>
      {field("allow", t("allow"), { placeholder: "deepseek/*, openai/gpt-5*", size: "28" })}
    </>
  );
}

/** The form's fields for a record's limits and allow-list (the inverse of limitsOf). */
function fieldsOf(record) {
  const l = record.limits || {};
  const b = l.budget || {};
  return {
    name: record.name, team: record.team || "", rpm: l.requests_per_minute ?? "", tpm: l.tokens_per_minute ?? "",
    streams: l.concurrent_streams ?? "", day: b.day || "", month: b.month || "", currency: b.currency || "USD",
    allow: (record.allow || []).join(", "),
  };
}

const allowOf = (s) => (s || "").split(",").map((p) => p.trim()).filter(Boolean);

function describeLimits(t, l) {
  if (!l) return t("unlimited");
  const parts = [];
  if (l.requests_per_minute) parts.push(`${num(l.requests_per_minute)} req/min`);
  if (l.tokens_per_minute) parts.push(`${num(l.tokens_per_minute)} tok/min`);
  if (l.concurrent_streams) parts.push(`${l.concurrent_streams} streams`);
  if (l.budget) {
    if (l.budget.day) parts.push(`${l.budget.day} ${l.budget.currency}/day`);
    if (l.budget.month) parts.push(`${l.budget.month} ${l.budget.currency}/month`);
  }
  return parts.length ? parts.join(" · ") : t("unlimited");
}

function Standing({ s }) {
  const t = useT();
  if (!s) return null;
  return (
    <>
      <td class="n" data-spend-day>{money(s.spend_day, s.currency)}</td>
      <td class="n">{money(s.spend_month, s.currency)}</td>
      <td class="n">{s.budget_remaining_pct === null || s.budget_remaining_pct === undefined ? "–" : `${Number(s.budget_remaining_pct).toFixed(1)}%`}</td>
    </>
  );
}

export function Keys() {
  const t = useT();
  const [keys, setKeys] = useState(null);
  const [teams, setTeams] = useState(null);
  const [form, setForm] = useState({});
  const [teamForm, setTeamForm] = useState({});
  const [created, setCreated] = useState(null);
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState("");
  const load = () => {
    get("/admin/keys").then((r) => setKeys(r.data), (e) => setError(e.message));
    get("/admin/teams").then((r) => setTeams(r.data), (e) => setError(e.message));
  };
  useEffect(load, []);
  const run = (p) => p.then(load, (e) => setError(e.message));

  const createKey = (e) => {
    e.preventDefault();
    setError("");
    const body = { name: form.name, limits: limitsOf(form) };
    if (form.team) body.team = form.team;
    if (form.allow) body.allow = allowOf(form.allow);
    if (form.expires) body.expires_at_ms = Date.parse(form.expires + "Z");
    if (editing) {
      // Cleared fields clear what they held.
      body.team = form.team || null;
      body.allow = allowOf(form.allow);
      run(patch(`/admin/keys/${encodeURIComponent(editing)}`, body).then(() => {
        setEditing(null);
        setForm({});
      }));
      return;
    }
    run(post("/admin/keys", body).then((k) => {
      setCreated(k);
      setForm({});
    }));
  };
  const saveTeam = (e) => {
    e.preventDefault();
    setError("");
    const body = { limits: limitsOf(teamForm) };
    if (teamForm.allow) body.allow = allowOf(teamForm.allow);
    const exists = (teams || []).some((x) => x.name === teamForm.name);
    run((exists ? patch(`/admin/teams/${encodeURIComponent(teamForm.name)}`, body) : post("/admin/teams", { name: teamForm.name, ...body })).then(() => setTeamForm({})));
  };
  const revoke = (k) => {
    if (confirm(t("confirmRevoke"))) run(post(`/admin/keys/${encodeURIComponent(k.id)}/revoke`));
  };
  return (
    <section>
      <h2>{t("keys")}</h2>
      {error && <p class="error" role="alert">{error}</p>}
      <form class="card form" onSubmit={createKey} name="create-key">
        <h3>{editing ? `${t("editKey")} ${editing}` : t("createKey")}</h3>
        <label>{t("name")} <input name="name" required value={form.name || ""} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} /></label>
        <label>{t("team")} <input name="team" value={form.team || ""} onInput={(e) => setForm({ ...form, team: e.currentTarget.value })} /></label>
        <LimitFields f={form} set={setForm} />
        <label>{t("expires")} <input type="datetime-local" name="expires" value={form.expires || ""} onInput={(e) => setForm({ ...form, expires: e.currentTarget.value })} /></label>
        <button type="submit">{editing ? t("save") : t("create")}</button>
        {editing && <button type="button" class="link" onClick={() => { setEditing(null); setForm({}); }}>{t("cancel")}</button>}
      </form>
      {created && (
        <div class="card created" role="status">
          <p>{t("newKey")}</p>
          <code class="secret" data-key={created.id}>{created.key}</code>
        </div>
      )}
      <table class="keys">
        <thead><tr><th>{t("name")}</th><th>id</th><th>{t("team")}</th><th>{t("limits")}</th><th>{t("allow")}</th><th>{t("expires")}</th><th>{t("status")}</th><th>{t("spendDay")}</th><th>{t("spendMonth")}</th><th>{t("budgetLeft")}</th><th /></tr></thead>
        <tbody>
          {(keys || []).map((k) => (
            <tr data-key-id={k.id} class={k.revoked ? "revoked" : ""}>
              <td>{k.name}</td><td><code>{k.id}</code></td><td>{k.team || "–"}</td>
              <td>{describeLimits(t, k.limits)}</td><td>{(k.allow || []).join(", ") || "*"}</td>
              <td>{k.expires_at_ms ? when(k.expires_at_ms) : "–"}</td>
              <td>{k.revoked ? t("revoked") : t("active")}</td>
              <Standing s={k.standing} />
              <td>{!k.revoked && (
                <>
                  <button class="link edit" onClick={() => { setEditing(k.id); setForm(fieldsOf(k)); scrollTo(0, 0); }}>{t("edit")}</button>{" "}
                  <button class="danger" onClick={() => revoke(k)}>{t("revoke")}</button>
                </>
              )}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="card form" onSubmit={saveTeam} name="team">
        <h3>{t("createTeam")}</h3>
        <label>{t("name")} <input name="name" required value={teamForm.name || ""} onInput={(e) => setTeamForm({ ...teamForm, name: e.currentTarget.value })} /></label>
        <LimitFields f={teamForm} set={setTeamForm} />
        <button type="submit">{t("create")}</button>
      </form>
      <table class="teams">
        <thead><tr><th>{t("team")}</th><th>{t("limits")}</th><th>{t("allow")}</th><th>{t("spendDay")}</th><th>{t("spendMonth")}</th><th>{t("budgetLeft")}</th></tr></thead>
        <tbody>
          {(teams || []).map((x) => (
            <tr data-team={x.name} onClick={() => setTeamForm(fieldsOf(x))} title={t("edit")}><td>{x.name}</td><td>{describeLimits(t, x.limits)}</td><td>{(x.allow || []).join(", ") || "*"}</td><Standing s={x.standing} /></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
