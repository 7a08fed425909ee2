"""The console in a real browser (Debian's Chromium driven by Playwright) on both hosts: sign in with the admin
token; the overview's numbers match the requests this test made with the OpenAI SDK; a key created in the
console works from the SDK until it is revoked in the console; a log entry's detail names the rule that decided
and its plan; the policy page shows the published policy and explains a request; the health page; 中文,
remembered across a reload. With GATEWAY_SCREENSHOTS=DIR, a screenshot of each page is written there (the ones
in docs/console/ were made so)."""

import os
import shutil
import time
from pathlib import Path

import httpx
import openai
import pytest
from playwright import sync_api

from harness import ADMIN_TOKEN, SELECTED_HOSTS, clear_of_a_minute_edge, policy_sources, start_gateway

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
POLICY = ('rule zh: when lang == zh -> deepseek:deepseek-flash fallback openai:gpt-4o-mini with archive 1d\n'
          'default -> requested\n')
SHOTS = os.environ.get("GATEWAY_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (scripts/setup.sh installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    gateway = start_gateway(request.param, mock)
    yield gateway
    gateway.stop()


def client(gw, key):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=30)


def shot(page, gw, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{gw.name}.png"), full_page=True)


def usage_totals(gw):
    r = httpx.get(gw.url + "/admin/usage", params={"from": int(time.time() * 1000) - 86_400_000,
                                                   "to": int(time.time() * 1000) + 3_600_000},
                  headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    r.raise_for_status()
    return r.json()["totals"]


def test_the_console_answers_what_an_operator_asks(gw, browser):
    expected_hash = gw.publish(policy_sources(POLICY))
    sdk = client(gw, gw.key)
    deadline = time.monotonic() + 20
    while sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).headers.get("x-gateway-policy") != expected_hash:
        assert time.monotonic() < deadline, "the published policy was not picked up"
        time.sleep(0.2)
    made = [sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": c}])
            for c in ("Hello there", "你好，请介绍一下你自己", "What is 2+2?")]
    zh_id = made[1].headers["x-request-id"]
    for r in made:
        gw.log_row(r.headers["x-request-id"])
    rows = gw.query("SELECT COUNT(*) AS n, SUM(prompt_tokens + completion_tokens) AS tokens FROM request_logs "
                    "WHERE endpoint IS NOT NULL")[0]

    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    # Errors the page raises or logs (a script error, a refused Content-Security-Policy, a failed fetch other
    # than the sign-in attempts the test makes on purpose).
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(gw.url + "/console")
    assert page.url.endswith("/console/")
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "GATEWAY_ADMIN_TOKEN" in page.locator("[role=alert]").inner_text()
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("nav")
    session = next(c for c in context.cookies() if c["name"] == "gw_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in page.evaluate("JSON.stringify(localStorage) + document.cookie")

    # Overview: what the rollups say equals what the SDK did (every row of the API's traffic on this gateway).
    page.wait_for_selector("[data-total=requests]")
    assert page.inner_text("[data-total=requests]") == f"{rows['n']:,}"
    assert page.inner_text("[data-total=tokens]") == f"{rows['tokens']:,}"
    totals = usage_totals(gw)
    assert page.inner_text("[data-total=cost]") == f"{totals[0]['cost']} {totals[0]['currency']}"
    assert page.locator(".chart canvas").count() >= 4
    page.select_option("select[name=group]", "rule")
    page.wait_for_selector("tr[data-group=zh]")
    shot(page, gw, "overview")

    # Logs: the Chinese request's detail says which rule decided and the plan it made.
    page.click("a[href='#/logs']")
    page.wait_for_selector(f"tr[data-request='{zh_id}']")
    page.click(f"tr[data-request='{zh_id}'] a")
    detail = page.locator(f".detail[data-request='{zh_id}']")
    detail.wait_for()
    assert detail.locator("[data-rule]").inner_text() == "zh"
    assert "deepseek:deepseek-flash" in detail.locator(".plan").inner_text()
    # The rule archives its requests: the detail shows the archived bodies (redacted) and links to them.
    detail.locator("[data-archive] button").click()
    assert "你好，请介绍一下你自己" in detail.locator(".payload-request").inner_text()
    assert detail.locator(".payload-response").inner_text().strip().startswith("{")
    link = detail.locator("[data-archive] a").get_attribute("href")
    assert link == f"/admin/logs/{zh_id}/payload"
    opened = context.request.get(gw.url + link)
    assert opened.status == 200 and opened.json()["id"] == zh_id
    shot(page, gw, "logs")

    # Keys: a key made in the console works from the SDK; a tighter limit set in the console holds for its next
    # request; revoked in the console, the SDK gets 401.
    page.click("a[href='#/keys']")
    clear_of_a_minute_edge(20)
    page.fill("form[name=create-key] input[name=name]", "console-app")
    page.fill("form[name=create-key] input[name=rpm]", "100")
    page.fill("form[name=create-key] input[name=day]", "5")
    page.click("form[name=create-key] button[type=submit]")
    new_key = page.locator(".created code.secret").inner_text()
    key_id = page.locator(".created code.secret").get_attribute("data-key")
    assert new_key.startswith("gw-")
    ok = client(gw, new_key).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert ok.choices[0].message.content
    row = page.locator(f"tr[data-key-id='{key_id}']")
    row.wait_for()
    assert "100 req/min" in row.inner_text() and "5 USD/day" in row.inner_text()
    shot(page, gw, "keys")
    row.locator("button.edit").click()
    assert page.input_value("form[name=create-key] input[name=rpm]") == "100"
    page.fill("form[name=create-key] input[name=rpm]", "1")
    page.click("form[name=create-key] button[type=submit]")
    page.wait_for_selector(f"tr[data-key-id='{key_id}']:has-text('1 req/min')")
    with pytest.raises(openai.RateLimitError):
        client(gw, new_key).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    row.locator("button.danger").click()
    page.wait_for_selector(f"tr.revoked[data-key-id='{key_id}']")
    # Revoked: the next request natively, within a second on every Worker isolate (the records feed).
    deadline = time.monotonic() + 2.0
    while True:
        try:
            client(gw, new_key).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError as e:
            assert "revoked" in str(e)
            break
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.1)

    # Policy: the published policy, its rules, and explain.
    page.click("a[href='#/policy']")
    assert page.locator("[data-active-hash]").inner_text() == expected_hash
    assert "rule zh" in page.locator(".policy-text").inner_text()
    assert "with archive 1d" in page.locator(".policy-text").inner_text()
    page.fill("form[name=explain] textarea[name=prompt]", "请把这段话翻译成英文")
    page.click("form[name=explain] button[type=submit]")
    page.wait_for_selector(".result[data-rule=zh]")
    assert "deepseek:deepseek-flash" in page.locator(".result .plan").inner_text()
    shot(page, gw, "policy")
    published_at = page.inner_text("[data-published-at]")
    assert published_at.startswith(time.strftime("%Y-%m-%d", time.gmtime())), published_at

    # A newer policy published from the CLI; the console rolls back to the first, and requests follow it.
    newer = gw.publish(policy_sources("rule short: when tokens < 100000 -> openai:gpt-4o-mini\ndefault -> requested\n"))
    page.reload()
    deadline = time.monotonic() + 20
    while page.locator("[data-active-hash]").inner_text() != newer:
        assert time.monotonic() < deadline, "the console does not show the newer policy"
        time.sleep(0.3)
        page.reload()
        page.wait_for_selector("[data-active-hash]")
    page.locator(f"li[data-hash='{expected_hash}'] button").click()
    page.wait_for_selector(f"[data-active-hash]:has-text('{expected_hash}')")
    assert page.locator(f"li[data-hash='{newer}']").count() == 1
    deadline = time.monotonic() + 20
    while sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).headers.get("x-gateway-policy") != expected_hash:
        assert time.monotonic() < deadline, "requests are not decided by the policy rolled back to"
        time.sleep(0.2)

    page.click("a[href='#/health']")
    page.wait_for_selector("[data-snapshot-at]")
    shot(page, gw, "health")

    # 中文, remembered across a reload.
    page.click("button.lang")
    assert page.locator("nav a.current").inner_text() == "健康"
    page.reload()
    page.wait_for_selector("nav")
    assert page.locator("nav a[href='#/overview']").inner_text() == "概览"
    page.click("a[href='#/overview']")
    page.wait_for_selector("[data-total=requests]")
    shot(page, gw, "overview-zh")

    # An image request's detail says what it was billed by besides tokens (in Chinese now).
    pic = sdk.images.with_raw_response.generate(model="openai/gpt-image-1", prompt="a lighthouse")
    pic_id = pic.headers["x-request-id"]
    gw.log_row(pic_id)
    page.goto(gw.url + f"/console/#/logs/{pic_id}")
    billed = page.locator(f".detail[data-request='{pic_id}'] [data-media]")
    billed.wait_for()
    assert billed.inner_text() == "1 张图片"

    unexpected = [e for e in errors if "401" not in e]
    assert unexpected == [], unexpected

    # Signing out ends the session: the admin API refuses the cookie's old holder.
    page.click("nav button:has-text('退出')")
    page.wait_for_selector("input[name=token]")
    assert page.evaluate("fetch('/admin/keys').then(r => r.status)") == 401
    context.close()


def test_the_console_sends_its_security_headers_and_writes_need_the_csrf_token(gw):
    page = httpx.get(gw.url + "/console/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    app = httpx.get(gw.url + "/console/app.js", timeout=10)
    assert app.status_code == 200 and "javascript" in app.headers["content-type"]
    # No address outside the gateway in what the browser loads (air-gapped deployments).
    assert "https://" not in page.text
    signed = httpx.post(gw.url + "/admin/session", json={"token": ADMIN_TOKEN}, timeout=10)
    cookie = signed.headers["set-cookie"].split(";")[0]
    forged = httpx.post(gw.url + "/admin/keys", json={"name": "csrf"}, headers={"cookie": cookie}, timeout=10)
    assert forged.status_code == 403 and forged.json()["error"]["type"] == "permission_error"
    made = httpx.post(gw.url + "/admin/keys", json={"name": "csrf"}, timeout=10,
                      headers={"cookie": cookie, "x-csrf-token": signed.json()["csrf"]})
    assert made.status_code == 201
