"""What every request cost, on both hosts: the mocks report known token counts (`POST /__mock/usage`), the
gateway prices them with the price table (policies/prices.toml, the built-in one here) and logs the exact cost in
the provider's currency and in USD, with the table's version. The gateways run on a shifted clock
(`CLOCK_OFFSET_MS`): one at a DeepSeek peak hour in 2026, one off-peak after Gemini's 2027 price change."""

import json
import time
import urllib.request
from datetime import datetime, timezone

import httpx
import pytest

from harness import SELECTED_HOSTS, policy_sources, start_gateway

# Thursday 2026-12-31 02:30 UTC = 10:30 in Beijing: DeepSeek's peak; Gemini 3.8 Flash still at $0.75 / $3.75.
PEAK_2026 = datetime(2026, 12, 31, 2, 30, tzinfo=timezone.utc)
# Tuesday 2027-01-05 13:30 UTC = 21:30 in Beijing: off-peak; Gemini 3.8 Flash at $1.50 / $7.50.
OFF_PEAK_2027 = datetime(2027, 1, 5, 13, 30, tzinfo=timezone.utc)

# Of 1,000 prompt tokens 600 were read from the cache; of 200 completion tokens 50 were reasoning.
KNOWN = {"prompt": 1000, "cached": 600, "completion": 200, "reasoning": 50}
PICO = 10**12


def at(moment: datetime) -> dict:
    return {"CLOCK_OFFSET_MS": str(int(moment.timestamp() * 1000 - time.time() * 1000))}


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gateways(request, mock):
    peak = start_gateway(request.param, mock, settings=at(PEAK_2026))
    off_peak = start_gateway(request.param, mock, settings=at(OFF_PEAK_2027))
    yield peak, off_peak
    peak.stop()
    off_peak.stop()


@pytest.fixture
def known_usage(mock):
    def force(**routes):
        post(mock, "/__mock/usage?reset", routes)
    yield force
    post(mock, "/__mock/usage?reset", {})
    mock.reset_faults()


def post(mock, path, body):
    req = urllib.request.Request(mock.url + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def chat(gw, model, **extra):
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                      json={"model": model, "messages": [{"role": "user", "content": "What does it cost?"}], **extra})


def cost(row):
    return (row["cost_pico"], row["cost_currency"], row["cost_reporting_pico"], row["reporting_currency"],
            row["cost_estimated"])


def amount(pico: int) -> str:
    """Pico-units as the exact decimal the `x-gateway-cost` header carries."""
    whole, frac = divmod(pico, PICO)
    return f"{whole}.{frac:012d}".rstrip("0") if frac else str(whole)


def usd(pico_cny: int) -> int:
    """CNY pico-units in USD at the table's 7.1, rounded half up to the pico-dollar."""
    return (pico_cny * 10 + 35) // 71


def test_deepseek_cache_hits_at_peak_and_off_peak(gateways, known_usage):
    known_usage(deepseek=KNOWN)
    peak, off_peak = gateways
    # Peak: 400 × ¥2 + 600 × ¥0.04 + 200 × ¥8 per 1M = ¥0.002424; off-peak half of it. Reasoning is output.
    expected = {peak: 2_424_000_000, off_peak: 1_212_000_000}
    for gw, pico in expected.items():
        r = chat(gw, "deepseek/deepseek-flash")
        assert r.status_code == 200, r.text
        assert r.headers["x-gateway-cost"] == f"{amount(pico)} CNY"
        row = gw.log_row(r.headers["x-request-id"])
        assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"], row["reasoning_tokens"]) == (
            1000, 600, 200, 50)
        assert cost(row) == (pico, "CNY", usd(pico), "USD", 0)
        assert len(row["price_version"]) == 12


def test_gemini_before_and_after_its_price_date(gateways, known_usage):
    known_usage(gemini={"prompt": 1000, "cached": 0, "completion": 200, "reasoning": 150})
    peak_2026, off_peak_2027 = gateways
    # 1,000 × $0.75 + 200 × $3.75 (thinking included) = $0.0015 before 2027-01-01; $1.50 / $7.50 after.
    for gw, pico in ((peak_2026, 1_500_000_000), (off_peak_2027, 3_000_000_000)):
        r = chat(gw, "gemini/gemini-3.8-flash")
        assert r.status_code == 200, r.text
        assert r.headers["x-gateway-cost"] == f"{amount(pico)} USD"
        assert cost(gw.log_row(r.headers["x-request-id"])) == (pico, "USD", pico, "USD", 0)


def test_an_openai_stream_with_reasoning_tokens(gateways, known_usage):
    known_usage(openai=KNOWN)
    gw = gateways[0]
    r = chat(gw, "gpt-4o-mini", stream=True)
    assert r.status_code == 200 and "[DONE]" in r.text
    assert "x-gateway-cost" not in r.headers  # a stream's cost is known only at its end: the row has it
    # 400 × $0.15 + 600 × $0.075 + 200 × $0.60 per 1M = $0.000225; reasoning priced as output, never added on top.
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["reasoning_tokens"]) == (1000, 200, 50)
    assert cost(row) == (225_000_000, "USD", 225_000_000, "USD", 0)


def test_embeddings_are_priced_per_input_token(gateways):
    gw = gateways[0]
    r = httpx.post(gw.url + "/v1/embeddings", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                   json={"model": "text-embedding-3-small", "input": ["a cost", "per token"]})
    assert r.status_code == 200, r.text
    row = gw.log_row(r.headers["x-request-id"])
    assert row["prompt_tokens"] > 0
    assert cost(row) == (row["prompt_tokens"] * 20_000, "USD", row["prompt_tokens"] * 20_000, "USD", 0)
    assert r.headers["x-gateway-cost"] == f"{amount(row['prompt_tokens'] * 20_000)} USD"


def test_a_stream_cut_before_its_usage_is_priced_from_an_estimate(gateways, mock, known_usage):
    gw = gateways[1]
    mock.faults(openai="mock-cut")
    r = chat(gw, "gpt-4o-mini", stream=True)
    assert r.status_code == 200
    row = gw.log_row(r.headers["x-request-id"])
    assert row["truncated"] == 1
    # No usage came: the gateway's estimate of the prompt and of the text it relayed, marked as estimated.
    assert row["cost_estimated"] == 1 and row["completion_tokens"] > 0 and row["prompt_tokens"] > 0
    expected = row["prompt_tokens"] * 150_000 + row["completion_tokens"] * 600_000
    assert cost(row) == (expected, "USD", expected, "USD", 1)


def test_a_json_answer_without_usage_is_priced_from_an_estimate(gateways, known_usage):
    """Some servers answer without `usage`: the gateway counts the prompt and the answer's text (about four bytes
    a token), prices that and says it is an estimate, in the row and in the header."""
    known_usage(openai={"omit": True})
    gw = gateways[0]
    r = chat(gw, "gpt-4o-mini")
    assert r.status_code == 200, r.text
    row = gw.log_row(r.headers["x-request-id"])
    answer = r.json()["choices"][0]["message"]["content"]
    assert row["completion_tokens"] == -(-len(answer.encode()) // 4) and row["prompt_tokens"] > 0
    expected = row["prompt_tokens"] * 150_000 + row["completion_tokens"] * 600_000
    assert cost(row) == (expected, "USD", expected, "USD", 1)
    assert r.headers["x-gateway-cost"] == f"{amount(expected)} USD; estimated"


def test_a_failed_request_costs_nothing(gateways, mock, known_usage):
    gw = gateways[0]
    mock.faults(openai="mock-500")
    r = chat(gw, "openai/gpt-4o-mini")
    assert r.status_code >= 500
    row = gw.log_row(r.headers["x-request-id"])
    assert row["cost_pico"] is None and "x-gateway-cost" not in r.headers


GROUP = "key_id, team, provider, model, rule_id"
SUMS = ["requests", "errors", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens",
        "cost_reporting_pico", "estimated"]


def test_rollups_equal_the_sums_of_the_rows_they_cover(gateways):
    """Every row of the API's traffic this module's requests wrote is in its hour's and its day's rollup, group
    by group (rows of the gateway's own endpoints, health and admin, are not usage)."""
    for gw in gateways:
        for period, ms in (("hour", 3_600_000), ("day", 86_400_000)):
            rollups = gw.query(
                f"SELECT start_ms, {GROUP}, {', '.join(SUMS)} FROM usage_rollups WHERE period = '{period}'")
            rows = gw.query(
                f"SELECT (ts_ms / {ms}) * {ms} AS start_ms, COALESCE(key_id, '') AS key_id, "
                "COALESCE(team, '') AS team, COALESCE(provider, '') AS provider, COALESCE(model, '') AS model, "
                "COALESCE(rule_id, '') AS rule_id, COUNT(*) AS requests, SUM(status >= 400) AS errors, "
                "SUM(COALESCE(prompt_tokens, 0)) AS prompt_tokens, SUM(COALESCE(cached_tokens, 0)) AS cached_tokens, "
                "SUM(COALESCE(completion_tokens, 0)) AS completion_tokens, "
                "SUM(COALESCE(reasoning_tokens, 0)) AS reasoning_tokens, "
                "SUM(COALESCE(cost_reporting_pico, 0)) AS cost_reporting_pico, "
                "SUM(COALESCE(cost_estimated, 0)) AS estimated "
                f"FROM request_logs WHERE endpoint IS NOT NULL GROUP BY 1, {GROUP}")
            key = lambda r: tuple(r[c] for c in ["start_ms", *GROUP.split(", ")])  # noqa: E731
            assert len(rows) > 1
            assert sorted((key(r), [r[c] for c in SUMS]) for r in rollups) == sorted(
                (key(r), [r[c] for c in SUMS]) for r in rows), (gw.name, period)


def usage(gw, **params):
    from harness import ADMIN_TOKEN
    return httpx.get(gw.url + "/admin/usage", params=params, timeout=30,
                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"})


def test_the_usage_api_totals_equal_the_rows(gateways):
    """`/admin/usage` over the rollups, grouped by provider and by hour: its totals are the sums of the log rows
    (the gateways' clocks are shifted, so the range is given around each one's time)."""
    for gw, moment in zip(gateways, (PEAK_2026, OFF_PEAK_2027)):
        day = moment.strftime("%Y-%m-%d")
        r = usage(gw, **{"from": day, "to": f"{day}T23:59:59Z", "group_by": "provider,hour"})
        assert r.status_code == 200, r.text
        report = r.json()
        # Requests that reached a provider (this report's own row, written after it, has none).
        rows = gw.query("SELECT provider, COUNT(*) AS requests, SUM(COALESCE(prompt_tokens, 0)) AS prompt, "
                        "SUM(COALESCE(cost_reporting_pico, 0)) AS pico FROM request_logs "
                        "WHERE provider IS NOT NULL GROUP BY provider")
        by_provider = {}
        for g in report["rows"]:
            p = by_provider.setdefault(g["provider"], [0, 0, 0])
            p[0] += g["requests"]
            p[1] += g["prompt_tokens"]
            p[2] += int(g["cost_pico"])
            assert g["hour"].startswith(day) and g["currency"] == "USD"
        by_provider.pop("", None)
        assert by_provider == {r["provider"]: [r["requests"], r["prompt"], r["pico"]] for r in rows}
        total = report["totals"][0]
        assert total["requests"] >= sum(r["requests"] for r in rows)
        assert int(total["cost_pico"]) == sum(r["pico"] for r in rows) > 0
        assert total["latency_ms"]["p50"] is not None
        csv = usage(gw, **{"from": day, "group_by": "provider", "format": "csv", "to": f"{day}T23:59:59Z"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith("provider,requests,errors,prompt_tokens")
        assert len(csv.text.splitlines()) >= 1 + len(rows)
    # Bad parameters get a 400 that says which one; no token, no report.
    r = usage(gateways[0], group_by="colour")
    assert r.status_code == 400 and r.json()["error"]["param"] == "group_by"
    assert httpx.get(gateways[0].url + "/admin/usage", timeout=10).status_code == 401


def test_the_usage_cli_prints_the_same_report(gateways):
    gw = gateways[0]
    if not hasattr(gw, "db"):
        pytest.skip("`gateway usage` reads the native host's SQLite file")
    import subprocess
    from harness import BIN_DIR
    day = PEAK_2026.strftime("%Y-%m-%d")
    args = {"from": day, "to": f"{day}T23:59:59Z", "group_by": "provider,model"}
    out = subprocess.run([str(BIN_DIR / "gateway"), "usage", "--db", str(gw.db), "--from", args["from"],
                          "--to", args["to"], "--group-by", args["group_by"]],
                         capture_output=True, text=True, check=True).stdout
    cli, api = json.loads(out), usage(gw, **args).json()
    # The API's own row may have landed in between: compare the providers' groups and the cost.
    named = lambda report: [g for g in report["rows"] if g["provider"]]  # noqa: E731
    assert named(cli) == named(api) and named(cli)
    assert cli["totals"][0]["cost_pico"] == api["totals"][0]["cost_pico"]


CHEAPEST = ('rule cheap: when model == "cheapest" -> cheapest(deepseek:deepseek-flash, workers_ai:"@cf/openai/gpt-oss-20b")\n'
            "default -> requested\n")
# About 10,000 tokens of prompt, and up to 1,000 out.
LONG = [{"role": "user", "content": "Summarise the history of the tea trade along the old routes. " * 640}]


def test_cheapest_picks_what_the_bill_says_is_cheapest_at_that_hour(gateways, known_usage):
    """The same request sent to each target is billed; `cheapest(…)` then picks the one with the smaller bill:
    Workers AI at DeepSeek's peak hour ($0.0023 against ¥0.028 = $0.00394), DeepSeek off-peak (¥0.014 =
    $0.00197). Last in this module: it publishes a policy of its own."""
    counts = {"prompt": 10_000, "completion": 1_000}
    known_usage(deepseek=counts, workers_ai=counts)
    source = policy_sources(CHEAPEST)
    for gw, cheaper in zip(gateways, ("workers_ai", "deepseek")):
        expected_hash = gw.publish(source)
        deadline = time.monotonic() + 20
        while chat(gw, "gpt-4o-mini").headers.get("x-gateway-policy") != expected_hash:
            assert time.monotonic() < deadline, f"{gw.name} does not decide with the published policy"
            time.sleep(0.2)
        bills = {}
        for model in ("deepseek/deepseek-flash", "workers_ai/@cf/openai/gpt-oss-20b"):
            r = chat(gw, model, messages=LONG, max_tokens=1000)
            assert r.status_code == 200, r.text
            row = gw.log_row(r.headers["x-request-id"])
            bills[row["provider"]] = row["cost_reporting_pico"]
        r = chat(gw, "cheapest", messages=LONG, max_tokens=1000)
        assert r.status_code == 200, r.text
        row = gw.log_row(r.headers["x-request-id"])
        assert row["rule_id"] == "cheap"
        assert row["provider"] == min(bills, key=bills.get) == cheaper, (gw.name, bills)
        assert row["cost_reporting_pico"] == min(bills.values())
