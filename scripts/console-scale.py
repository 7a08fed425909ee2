#!/usr/bin/env python3
"""How fast the console is with a million log rows: fills a native gateway's SQLite database with ROWS request
rows over the last seven days (20 keys, 4 teams, 6 providers, 3% errors) and their usage rollups, then loads each
console page in Debian's Chromium (Playwright) and times it from navigation until its data is on screen, several
times each; the admin API's own times, and the query plans of the log filters, are printed too.

    .venv/bin/python scripts/console-scale.py [--rows 1000000] [--loads 5]

Needs the debug binaries and the built console (scripts/test.sh builds both)."""

import argparse
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from harness import ADMIN_TOKEN, Mock, NativeGateway, policy_sources  # noqa: E402

HOUR = 3_600_000
TARGETS = [("openai", "gpt-4o-mini", "USD"), ("deepseek", "deepseek-flash", "CNY"), ("gemini", "gemini-3.8-flash", "USD"),
           ("openrouter", "openai/gpt-5.2", "USD"), ("siliconflow", "Qwen/Qwen3-8B", "CNY"),
           ("workers_ai", "@cf/openai/gpt-oss-20b", "USD")]
RULES = ["default", "zh", "coding", "cheap", "saving"]
BOUNDS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]


def fill(db: Path, rows: int) -> None:
    rng = random.Random(7)
    now = int(time.time() * 1000)
    start = now - 7 * 24 * HOUR
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    keys = [f"key_{i:012x}" for i in range(20)]
    teams = ["research", "search", "support", "ml-platform"]
    sql = ("INSERT INTO request_logs (id, ts_ms, key_id, method, path, endpoint, requested_model, provider, model, "
           "status, error_code, stream, attempts, latency_ms, ttft_ms, prompt_tokens, completion_tokens, total_tokens, "
           "cached_tokens, reasoning_tokens, truncated, policy_hash, rule_id, attempt_log, decision_attrs, cost_pico, "
           "cost_currency, cost_reporting_pico, reporting_currency, cost_estimated, team) VALUES "
           "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    batch = []
    for i in range(rows):
        ts = start + (i * 7 * 24 * HOUR) // rows
        k = rng.randrange(len(keys))
        provider, model, currency = TARGETS[rng.randrange(len(TARGETS))]
        failed = rng.random() < 0.03
        stream = rng.random() < 0.4
        latency = rng.lognormvariate(6.2, 0.7)
        prompt, completion = rng.randrange(20, 4000), rng.randrange(1, 800)
        pico = (prompt * 150_000 + completion * 600_000) if not failed else None
        reporting = pico if currency == "USD" or pico is None else pico * 10 // 71
        rule = RULES[rng.randrange(len(RULES))]
        attempts = f'[{{"provider":"{provider}","model":"{model}","status":{502 if failed else 200},"ms":{latency:.1f}}}]'
        decision = f'{{"attrs":{{"lang":"en","tokens":{prompt}}},"plan":["{provider}:{model}"],"skipped":[]}}'
        batch.append((f"req_{ts:012x}{rng.getrandbits(64):016x}{i & 0xffff:04x}", ts, keys[k], "POST",
                      "/v1/chat/completions", "chat", model, provider, model, 502 if failed else 200,
                      "upstream_failed" if failed else None, int(stream), 1, latency,
                      latency * 0.3 if stream and not failed else None, None if failed else prompt,
                      None if failed else completion, None if failed else prompt + completion, 0, 0, 0, "ab" * 32,
                      rule, attempts, decision, pico, currency if pico else None, reporting, "USD", 0,
                      teams[k % len(teams)]))
        if len(batch) == 50_000:
            conn.executemany(sql, batch)
            batch.clear()
    conn.executemany(sql, batch)
    lat = ", ".join(f"SUM(CASE WHEN latency_ms <= {b} AND latency_ms > {([0] + BOUNDS)[n]} THEN 1 ELSE 0 END)"
                    for n, b in enumerate(BOUNDS)) + f", SUM(CASE WHEN latency_ms > {BOUNDS[-1]} THEN 1 ELSE 0 END)"
    ttft = ", ".join(f"SUM(CASE WHEN ttft_ms IS NOT NULL AND ttft_ms <= {b} AND ttft_ms > {([0] + BOUNDS)[n]} THEN 1 ELSE 0 END)"
                     for n, b in enumerate(BOUNDS)) + f", SUM(CASE WHEN ttft_ms > {BOUNDS[-1]} THEN 1 ELSE 0 END)"
    for period, ms in (("hour", HOUR), ("day", 24 * HOUR)):
        conn.execute(
            f"INSERT INTO usage_rollups SELECT '{period}', (ts_ms / {ms}) * {ms}, COALESCE(key_id, ''), "
            "COALESCE(team, ''), COALESCE(provider, ''), COALESCE(model, ''), COALESCE(rule_id, ''), "
            "COALESCE(reporting_currency, ''), COUNT(*), SUM(status >= 400), SUM(COALESCE(prompt_tokens, 0)), "
            "SUM(COALESCE(cached_tokens, 0)), SUM(COALESCE(completion_tokens, 0)), SUM(COALESCE(reasoning_tokens, 0)), "
            f"SUM(COALESCE(cost_reporting_pico, 0)), 0, {lat}, {ttft} FROM request_logs WHERE endpoint IS NOT NULL "
            "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8")
    conn.commit()
    conn.close()


def median_ms(f, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


def screenshots(page, gw, out: Path) -> None:
    """Each page as an operator sees it with a week of traffic, in English, and the overview in Chinese."""
    out.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30,
               json={"name": "search-app", "team": "search", "allow": ["deepseek/*", "openai/*"],
                     "limits": {"requests_per_minute": 600, "budget": {"currency": "CNY", "day": "200"}}})
    published = gw.publish(policy_sources(
        'rule zh: when lang == zh -> deepseek:deepseek-flash fallback openai:gpt-4o-mini\n'
        'rule saving: when key.budget.remaining_pct < 20 -> workers_ai:"@cf/openai/gpt-oss-20b"\n'
        'default -> requested\n'))
    # The newest API row, the one whose detail is shown, is a real request decided by that policy.
    deadline = time.monotonic() + 30
    while True:
        r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"}, timeout=30,
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "请用三句话介绍一下长城"}]})
        if r.headers.get("x-gateway-policy") == published or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    gw.log_row(r.headers["x-request-id"])

    def visit(hash_, ready, name, then=None):
        page.goto("about:blank")
        page.goto(gw.url + "/console/" + hash_)
        page.wait_for_selector(ready)
        if then:
            then()
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / f"{name}.png"))

    def week():
        page.select_option("select[name=range]", "last7d")
        page.wait_for_timeout(800)
        page.select_option("select[name=group]", "team")
        page.wait_for_selector("tr[data-group=research]")
    visit("#/overview", "[data-total=requests]", "overview", week)
    first = page.evaluate("fetch('/admin/logs?limit=1&endpoint=api').then(r => r.json()).then(j => j.data[0].id)")
    visit(f"#/logs/{first}", ".detail", "logs")
    visit("#/keys", "form[name=create-key]", "keys")

    def explain():
        page.fill("form[name=explain] textarea[name=prompt]", "请把这段话翻译成英文")
        page.click("form[name=explain] button[type=submit]")
        page.wait_for_selector(".result[data-rule]")
    visit("#/policy", "[data-active-hash]", "policy", explain)
    visit("#/health", "[data-snapshot-at]", "health")
    page.evaluate("localStorage.setItem('gw-console-lang', 'zh')")
    visit("#/overview", "[data-total=requests]", "overview-zh", week)
    page.evaluate("localStorage.setItem('gw-console-lang', 'en')")
    print(f"screenshots in {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--screenshots", help="a directory for a screenshot of each page (docs/console/ holds them)")
    args = ap.parse_args()
    mock = Mock()
    gw = NativeGateway(mock, threads=2)
    try:
        t = time.perf_counter()
        fill(gw.db, args.rows)
        print(f"filled {args.rows:,} rows and their rollups in {time.perf_counter() - t:.1f} s "
              f"({gw.db.stat().st_size / 1e6:.0f} MB)")
        conn = sqlite3.connect(gw.db)
        print(f"usage_rollups rows: {conn.execute('SELECT COUNT(*) FROM usage_rollups').fetchone()[0]:,}")
        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        now = int(time.time() * 1000)
        print("\nadmin API (median / max of", args.loads, "calls, ms):")
        for name, path, params in [
            ("usage, 7 days by hour", "/admin/usage", {"from": now - 7 * 24 * HOUR, "to": now + HOUR, "group_by": "hour"}),
            ("usage, 7 days by model", "/admin/usage", {"from": now - 7 * 24 * HOUR, "to": now + HOUR, "group_by": "model"}),
            ("usage, 30 days by day", "/admin/usage", {"from": now - 30 * 24 * HOUR, "to": now + HOUR, "group_by": "day"}),
            ("logs, newest 50", "/admin/logs", {"endpoint": "api"}),
            ("logs, one key", "/admin/logs", {"key": "key_000000000013"}),
            ("logs, one team", "/admin/logs", {"team": "support"}),
            ("logs, one provider", "/admin/logs", {"provider": "siliconflow"}),
            ("logs, errors only", "/admin/logs", {"status": "error"}),
            ("logs, a day a week ago", "/admin/logs", {"from": now - 6 * 24 * HOUR, "to": now - 5 * 24 * HOUR}),
            ("keys", "/admin/keys", {}),
        ]:
            med, worst = median_ms(lambda: httpx.get(gw.url + path, params=params, headers=auth, timeout=60).raise_for_status(), args.loads)
            print(f"  {name:28} {med:8.1f} {worst:8.1f}")
        print("\nquery plans of the log filters:")
        for f in ["key_id = 'k'", "team = 't'", "provider = 'p'", "status >= 400", "id >= 'req_0' AND id < 'req_1'"]:
            plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM request_logs WHERE {f} ORDER BY id DESC LIMIT 50").fetchall()
            print(f"  {f:26} {'; '.join(r[-1] for r in plan)}")
        conn.close()

        print("\nconsole pages in Chromium, navigation to data on screen (median / max of", args.loads, "loads, ms):")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(gw.url + "/console/")
            page.fill("input[name=token]", ADMIN_TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("nav")
            pages = [
                ("overview (24 h)", "#/overview", "[data-total=requests]"),
                ("logs", "#/logs", "tr[data-request]"),
                ("keys and teams", "#/keys", "form[name=create-key]"),
                ("policy", "#/policy", "[data-active-hash]"),
                ("health", "#/health", "[data-snapshot-at]"),
            ]
            for name, hash_, ready in pages:
                def load():
                    page.goto("about:blank")
                    page.goto(gw.url + "/console/" + hash_)
                    page.wait_for_selector(ready, timeout=30_000)
                med, worst = median_ms(load, args.loads)
                print(f"  {name:28} {med:8.1f} {worst:8.1f}")

            def week():
                page.goto("about:blank")
                page.goto(gw.url + "/console/#/overview")
                page.wait_for_selector("[data-total=requests]")
                page.select_option("select[name=range]", "last7d")
                page.wait_for_function(
                    "n => document.querySelector('[data-total=requests]').textContent.replace(/,/g, '') >= n",
                    arg=args.rows * 9 // 10)
            med, worst = median_ms(week, args.loads)
            print(f"  {'overview (7 days, all rows)':28} {med:8.1f} {worst:8.1f}")
            if args.screenshots:
                screenshots(page, gw, Path(args.screenshots))
            browser.close()
    finally:
        gw.stop()
        mock.stop()


if __name__ == "__main__":
    main()
