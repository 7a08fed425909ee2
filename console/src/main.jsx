// The console: sign-in, then five pages under hash routes (#/overview, #/logs, #/keys, #/policy, #/health).

import "./style.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { T, useT } from "./ctx.js";
import { resume, signIn, signOut } from "./api.js";
import { initialLang, rememberLang, translator } from "./i18n.js";
import { Overview } from "./pages/overview.jsx";
import { Logs } from "./pages/logs.jsx";
import { Keys } from "./pages/keys.jsx";
import { PolicyPage } from "./pages/policy.jsx";
import { Health } from "./pages/health.jsx";

const PAGES = [
  ["overview", Overview],
  ["logs", Logs],
  ["keys", Keys],
  ["policy", PolicyPage],
  ["health", Health],
];

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const page = PAGES.some(([p]) => p === parts[0]) ? parts[0] : "overview";
  return { page, arg: parts.slice(1).map(decodeURIComponent).join("/") };
}

function SignIn({ onDone }) {
  const t = useT();
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const submit = async (e) => {
    e.preventDefault();
    try {
      await signIn(token);
      onDone();
    } catch (err) {
      setError(err.message);
    }
  };
  return (
    <form class="card signin" onSubmit={submit}>
      <h1>{t("title")}</h1>
      <label>
        {t("adminToken")}
        <input type="password" name="token" autocomplete="current-password" value={token}
          onInput={(e) => setToken(e.currentTarget.value)} required />
      </label>
      <p class="muted">{t("signInHelp")}</p>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit">{t("signIn")}</button>
    </form>
  );
}

function App() {
  const [lang, setLang] = useState(initialLang());
  const [signedIn, setSignedIn] = useState(null);
  const [where, setWhere] = useState(route());
  const t = translator(lang);
  useEffect(() => {
    rememberLang(lang);
  }, [lang]);
  useEffect(() => {
    const on = () => setWhere(route());
    addEventListener("hashchange", on);
    resume().then(setSignedIn, () => setSignedIn(false));
    return () => removeEventListener("hashchange", on);
  }, []);
  const switcher = (
    <button class="link lang" onClick={() => setLang(lang === "zh" ? "en" : "zh")}>{t("language")}</button>
  );
  let body;
  if (signedIn === null) body = <p class="muted">{t("loading")}</p>;
  else if (!signedIn) body = <SignIn onDone={() => setSignedIn(true)} />;
  else {
    const Page = PAGES.find(([p]) => p === where.page)[1];
    body = (
      <>
        <nav>
          <strong>{t("title")}</strong>
          {PAGES.map(([p]) => (
            <a href={`#/${p}`} class={p === where.page ? "current" : ""}>{t(p)}</a>
          ))}
          <span class="spacer" />
          {switcher}
          <button class="link" onClick={() => signOut().finally(() => setSignedIn(false))}>{t("signOut")}</button>
        </nav>
        <main>
          <Page arg={where.arg} key={where.page} />
        </main>
      </>
    );
  }
  return (
    <T.Provider value={t}>
      {!signedIn && <div class="corner">{switcher}</div>}
      {body}
    </T.Provider>
  );
}

render(<App />, document.getElementById("app"));
