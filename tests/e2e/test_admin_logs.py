"""`GET /admin/logs` and `GET /admin/logs/{id}` on both hosts: newest first, filters, pages on the request id, and
a request's detail with its attempts and what decided it (the console's Logs page reads these)."""

import httpx
import pytest

from harness import ADMIN_TOKEN, SELECTED_HOSTS, start_gateway


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    gateway = start_gateway(request.param, mock)
    yield gateway
    gateway.stop()


def logs(gw, path="/admin/logs", **params):
    return httpx.get(gw.url + path, params=params, timeout=30, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})


def test_logs_are_newest_first_filtered_and_paged(gw):
    ids = []
    for model in ("gpt-4o-mini", "deepseek/deepseek-chat", "openai/mock-500"):
        r = httpx.post(gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
        ids.append(r.headers["x-request-id"])
    for i in ids:
        gw.log_row(i)  # written (the log writer batches rows)
    page = logs(gw, limit=2)
    assert page.status_code == 200, page.text
    first = page.json()
    assert [e["id"] for e in first["data"]] == sorted([e["id"] for e in first["data"]], reverse=True)
    assert first["next"] == first["data"][-1]["id"]
    older = logs(gw, limit=2, before=first["next"]).json()
    assert all(e["id"] < first["next"] for e in older["data"])
    errors = logs(gw, status="error").json()["data"]
    assert ids[2] in [e["id"] for e in errors] and all(e["status"] >= 400 for e in errors)
    deepseek = logs(gw, provider="deepseek").json()["data"]
    assert [e["id"] for e in deepseek] == [ids[1]]
    detail = logs(gw, f"/admin/logs/{ids[0]}").json()
    assert detail["attempt_log"][0]["provider"] == "openai" and detail["rule_id"] == "default"
    assert isinstance(detail["cost_reporting_pico"], str)
    assert logs(gw, "/admin/logs/req_nope").status_code == 404
    assert logs(gw, limit=0).status_code == 400
    assert httpx.get(gw.url + "/admin/logs", timeout=10).status_code == 401
