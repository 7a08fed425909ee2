#!/usr/bin/env python3
"""Writes policies/tests/replay-log.jsonl: a request log that `gateway-policy replay` reads in CI. A native
gateway with the example policies (and the mock provider) is sent requests from the labelled set
(tests/data/tasks.jsonl: English and Chinese, every task) under keys of several tiers and teams, some with tags,
max_tokens or streaming; its log rows are then written out as JSON lines, the columns replay reads.

    .venv/bin/python scripts/replay-fixture.py [--requests 300]"""

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import httpx  # noqa: E402

from harness import Mock, NativeGateway  # noqa: E402

COLUMNS = ("id, ts_ms, rule_id, status, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, "
           "CAST(cost_reporting_pico AS TEXT) AS cost_reporting_pico, reporting_currency, decision_attrs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "policies" / "tests" / "replay-log.jsonl"))
    args = ap.parse_args()
    labelled = [json.loads(line) for line in (ROOT / "tests" / "data" / "tasks.jsonl").read_text().splitlines() if line]
    step = max(1, len(labelled) // args.requests)
    chosen = labelled[::step][: args.requests]
    mock = Mock()
    gw = NativeGateway(mock, threads=1)
    try:
        published = gw.publish(ROOT / "policies")
        keys = [gw.key, gw.create_key(tier="free"), gw.create_key(team="research"), gw.create_key(team="data-eng")]
        # Every request is decided by the published policy, not the built-in default that ran before it.
        probe = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        while httpx.post(gw.url + "/v1/chat/completions", json=probe, timeout=30,
                         headers={"authorization": f"Bearer {gw.key}"}).headers.get("x-gateway-policy") != published:
            time.sleep(0.2)
        models = ["gpt-4o-mini", "gpt-6-luna", "deepseek/deepseek-flash", "gemini/gemini-3.8-flash"]
        with httpx.Client(timeout=30) as c:
            for i, item in enumerate(chosen):
                body = {"model": models[i % len(models)], "messages": [{"role": "user", "content": item["prompt"]}]}
                if i % 5 == 0:
                    body["max_tokens"] = 256
                if i % 7 == 0:
                    body["stream"] = True
                headers = {"authorization": f"Bearer {keys[(i // 3) % len(keys)]}"}
                if i % 11 == 0:
                    headers["x-gateway-tags"] = "batch"
                c.post(gw.url + "/v1/chat/completions", json=body, headers=headers).read()
        for _ in range(50):  # the log writer batches rows
            if gw.query("SELECT COUNT(*) AS n FROM request_logs WHERE endpoint IS NOT NULL")[0]["n"] > len(chosen):
                break
            time.sleep(0.1)
        conn = sqlite3.connect(gw.db)
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(
            f"SELECT {COLUMNS} FROM request_logs WHERE endpoint IS NOT NULL AND policy_hash = ? ORDER BY id",
            (published,))]
        Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
        print(f"{len(rows)} rows in {args.out}")
    finally:
        gw.stop()
        mock.stop()


if __name__ == "__main__":
    main()
