#!/usr/bin/env python3
"""Benchmarks the gateway against the mock provider (README: "Benchmarks"). Not a test: it prints numbers.

Method: the mock provider answers JSON at once and paces stream chunks 2 ms apart. `loadgen` (src/mock/src/bin/loadgen.rs) sends the same request
over keep-alive connections for a fixed time, first to the mock directly, then through the gateway with the
example policies published (every request is decided by the compiled policy, logged to SQLite / D1). The added
latency is the difference of the medians, measured over one connection with loadgen, the mock and the gateway all
pinned to core 0 (the median of three runs), then with the gateway alone on core 1, then alone on core 1 kept
awake by an idle-class spinner (what is left without the VM's wake-up of an idle vCPU); throughput over 32 connections with the gateway (one worker
thread) alone on core 1 and loadgen and the mock on core 0. CPU per request is the gateway process's (or
workerd's) user + system CPU time over the run divided by the requests it served; memory is its peak RSS.

    python3 scripts/bench.py [--seconds 10] [--skip-workerd]

Needs release builds of `gateway`, `gateway-policy`, `mock-provider` and `loadgen`
(`cargo build --release --bins`) and, for workerd, a built Worker (scripts/build-worker.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REL = ROOT / "target" / "release"
os.environ.setdefault("GATEWAY_BIN_DIR", str(REL))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import SETTINGS, Process, WorkerdGateway, free_port, wait_healthy  # noqa: E402

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Give me three ideas for a weekend trip near the sea, one line each."}]})
STREAM_BODY = json.dumps({**json.loads(BODY), "stream": True})
# Streams are paced as a provider paces tokens (JSON answers come at once). With every chunk sent at the same
# instant, the time to the first token would mostly measure how fast the rest of the stream is relayed.
CHUNK_DELAY_MS = 2


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load(url: str, body: str, headers: list[str], connections: int, seconds: float) -> dict:
    args = ["taskset", "-c", "0", str(REL / "loadgen"), "--url", url, "--body", body,
            "--connections", str(connections), "--duration", str(seconds), "--warmup", "1"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def pin(pids: list[int], core: int) -> None:
    """Moves every thread of these processes to one core."""
    for pid in pids:
        subprocess.run(["taskset", "-a", "-cp", str(core), str(pid)], capture_output=True, check=True)


@contextlib.contextmanager
def awake(core: int):
    """Keeps `core` from idling with a SCHED_IDLE spinner (preempted by any normal thread that wakes)."""
    spinner = subprocess.Popen(["taskset", "-c", str(core), "chrt", "-i", "0", sys.executable, "-c",
                                "while True: pass"])
    try:
        time.sleep(0.3)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def median_run(url: str, body: str, headers: list[str], seconds: float, runs: int = 3) -> dict:
    """The run with the median p50 latency of a few one-connection runs (this VM's timings wander)."""
    rs = sorted((load(url, body, headers, 1, seconds) for _ in range(runs)), key=lambda r: r["latency_ms"]["p50"])
    return rs[len(rs) // 2]


def measure(name: str, base: str, key: str, pids: list[int], seconds: float, results: dict) -> None:
    auth = [f"authorization: Bearer {key}"]
    # Latency: one connection, everything (loadgen, mock, gateway) on core 0, so that no request waits for an
    # idle core to wake up (on this VM that alone costs 0.1-0.3 ms per hop and would swamp what is measured).
    pin(pids, 0)
    for kind, body in (("json", BODY), ("stream", STREAM_BODY)):
        r = median_run(f"{base}/v1/chat/completions", body, auth, seconds / 2)
        results[f"{name}_{kind}_1conn"] = r
        print(f"{name:>8} {kind:>6} 1 connection : p50 {r['latency_ms']['p50']:.3f} ms, "
              f"p99 {r['latency_ms']['p99']:.3f} ms, first token p50 {r['ttfb_ms']['p50']:.3f} ms, "
              f"errors {r['errors']}", flush=True)
    # Latency again with the measured server alone on core 1 and loadgen and the mock on core 0: what a
    # deployment sees, wake-ups of an idle core included.
    if name != "mock":
        pin(pids, 1)
        for kind, body in (("json", BODY), ("stream", STREAM_BODY)):
            r = median_run(f"{base}/v1/chat/completions", body, auth, seconds / 2)
            results[f"{name}_{kind}_1conn_own_core"] = r
            print(f"{name:>8} {kind:>6} 1 connection, own core: p50 {r['latency_ms']['p50']:.3f} ms, "
                  f"first token p50 {r['ttfb_ms']['p50']:.3f} ms, errors {r['errors']}", flush=True)
        # Once more with core 1 kept awake by a spinner of the idle scheduling class (it runs only when nothing
        # else wants the core, and gives way at once): what is left is the server's own time, without the
        # VM's wake-up of an idle vCPU. A stream has one more such wake-up than a JSON answer (between the
        # upstream's headers and its first token, 2 ms later), which is most of its extra time to first token.
        with awake(1):
            for kind, body in (("json", BODY), ("stream", STREAM_BODY)):
                r = median_run(f"{base}/v1/chat/completions", body, auth, seconds / 2)
                results[f"{name}_{kind}_1conn_own_core_awake"] = r
                print(f"{name:>8} {kind:>6} 1 connection, own core kept awake: p50 {r['latency_ms']['p50']:.3f} "
                      f"ms, first token p50 {r['ttfb_ms']['p50']:.3f} ms, errors {r['errors']}", flush=True)
    # Throughput: the measured server alone on core 1; loadgen (and the mock) on core 0.
    pin(pids, 1)
    before = sum(cpu_seconds(p) for p in pids)
    r = load(f"{base}/v1/chat/completions", BODY, auth, 32, seconds)
    cpu = sum(cpu_seconds(p) for p in pids) - before
    # Warm-up requests used CPU too: count them at the measured rate.
    served = r["requests"] + r["rps"]
    r["cpu_us_per_request"] = round(cpu / served * 1e6, 1) if served else None
    r["peak_rss_mib"] = round(max(peak_rss_mib(p) for p in pids), 1)
    results[f"{name}_json_32conn"] = r
    print(f"{name:>8}   json 32 connections: {r['rps']:.0f} req/s, p50 {r['latency_ms']['p50']:.3f} ms, "
          f"p99 {r['latency_ms']['p99']:.3f} ms, CPU {r['cpu_us_per_request']} µs/request, "
          f"peak RSS {r['peak_rss_mib']} MiB, errors {r['errors']}", flush=True)
    if name == "mock":
        pin(pids, 0)
        return
    # What the host costs around the chat path: a request answered without an upstream (GET /v1/models: key
    # lookup, log row) and one answered before authentication (GET /healthz: log row only).
    for path in ("/v1/models", "/healthz"):
        before = sum(cpu_seconds(p) for p in pids)
        r = load(f"{base}{path}", "", auth, 32, seconds / 2)
        cpu = sum(cpu_seconds(p) for p in pids) - before
        served = r["requests"] + r["rps"]
        r["cpu_us_per_request"] = round(cpu / served * 1e6, 1) if served else None
        results[f"{name}_get_{path.strip('/').replace('/', '_')}_32conn"] = r
        print(f"{name:>8} GET {path:<10} 32 connections: {r['rps']:.0f} req/s, CPU {r['cpu_us_per_request']} "
              f"µs/request, errors {r['errors']}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--skip-workerd", action="store_true")
    args = ap.parse_args()
    results: dict = {}
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    mock_port = free_port()
    mock = Process("bench-mock", ["taskset", "-c", "0", str(REL / "mock-provider"), "--listen",
                                  f"127.0.0.1:{mock_port}", "--api-key", SETTINGS["OPENAI_API_KEY"],
                                  "--chunk-delay-ms", str(CHUNK_DELAY_MS)])
    procs = [mock]
    try:
        mock_url = f"http://127.0.0.1:{mock_port}"
        wait_healthy(mock_url, mock, 30)
        bases = {"OPENAI_BASE_URL": f"{mock_url}/v1", "DEEPSEEK_BASE_URL": f"{mock_url}/deepseek",
                 "SILICONFLOW_BASE_URL": f"{mock_url}/siliconflow/v1",
                 "OPENROUTER_BASE_URL": f"{mock_url}/openrouter/api/v1",
                 "GEMINI_BASE_URL": f"{mock_url}/gemini/v1beta",
                 "WORKERS_AI_BASE_URL": f"{mock_url}/workers-ai/client/v4/accounts/acc123/ai"}
        measure("mock", mock_url, SETTINGS["OPENAI_API_KEY"], [mock.proc.pid], args.seconds, results)

        db = work / "gateway.sqlite"
        pin([mock.proc.pid], 0)
        key = subprocess.run([str(REL / "gateway"), "keys", "create", "--name", "bench", "--db", str(db)],
                             capture_output=True, text=True, check=True).stdout.strip()
        policy_dir = work / "policy"
        subprocess.run([str(REL / "gateway-policy"), "publish", str(ROOT / "policies"), "--dir", str(policy_dir)],
                       capture_output=True, check=True)
        port = free_port()
        env = dict(os.environ, **{**SETTINGS, "POLICY_REFRESH_MS": "10000"}, **bases)
        native = Process("bench-native", [str(REL / "gateway"), "serve", "--listen",
                                          f"127.0.0.1:{port}", "--db", str(db), "--threads", "1",
                                          "--policy", str(policy_dir)], env=env)
        procs.append(native)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, native, 30)
        measure("native", url, key, [native.proc.pid], args.seconds, results)
        native.stop()
        procs.remove(native)

        if not args.skip_workerd:
            class MockRef:
                def bases(self):
                    return bases
            w = WorkerdGateway(MockRef(), settings={"POLICY_REFRESH_MS": "10000"})
            try:
                w.publish(ROOT / "policies")
                time.sleep(1)
                pids = [int(p) for p in subprocess.run(["pgrep", "-g", str(w.proc.proc.pid), "workerd"],
                                                       capture_output=True, text=True).stdout.split()]
                measure("workerd", w.url, w.key, pids, args.seconds, results)
            finally:
                w.stop()
    finally:
        for p in procs:
            p.stop()
    for host in ("native", "workerd"):
        # All on core 0; the gateway alone on core 1; alone on core 1, kept awake.
        for suffix, where in (("", ""), ("_own_core", ", on its own core"),
                              ("_own_core_awake", ", on its own core kept awake")):
            json_run, stream_run = results.get(f"{host}_json_1conn{suffix}"), results.get(f"{host}_stream_1conn{suffix}")
            if not json_run or not stream_run:
                continue
            added = json_run["latency_ms"]["p50"] - results["mock_json_1conn"]["latency_ms"]["p50"]
            ttfb = stream_run["ttfb_ms"]["p50"] - results["mock_stream_1conn"]["ttfb_ms"]["p50"]
            results[f"{host}_added{suffix}"] = {"latency_p50_ms": round(added, 3), "first_token_p50_ms": round(ttfb, 3)}
            print(f"{host}{where}: added median latency {added:.3f} ms (JSON), added median time to the first token "
                  f"{ttfb:.3f} ms (stream)")
    out = ROOT / "target" / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
