#!/usr/bin/env python3
"""Measures the Worker where it runs: the built bundle (src/workers/build) served by `workerd` itself, without
wrangler's proxy and its KV/D1 emulation, beside a minimal JavaScript Worker that only proxies to the mock, in the
same workerd process (README: "Benchmarks"). Not a test: it prints numbers.

KV and D1 are in-memory stand-ins (scripts/workerd/stand-ins.js, named like workerd's bindings), seeded with a key
and the example policies as `gateway-policy publish` compiles them; every request through the gateway is
authenticated, decided by the policy and logged (the stand-in counts rows). Latency: one connection, workerd alone
on core 1, loadgen and the mock on core 0 (median of three runs); CPU per request: workerd's user + system time over
a run with 8 connections divided by the requests served (median of three runs).

    python3 scripts/bench-workerd.py [--seconds 6] [--policies DIR] [--bundle DIR] [--limits none|objects|limited]

`--limits objects` binds LIMITER to workerd's Durable Objects (in memory), so every request of the key passes its
object; `--limits limited` also gives the key and its team every kind of limit (never reached), so a request
passes two objects.

Needs release builds of `gateway-policy`, `mock-provider` and `loadgen` and a built Worker (scripts/build-worker.sh).
"""
import argparse, hashlib, json, shutil, subprocess, sys, tempfile
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench import REL, SETTINGS, Process, free_port, wait_healthy, median_run, pin, cpu_seconds, load, BODY, STREAM_BODY  # noqa: E402
WORKERD = ROOT / "node_modules" / "workerd" / "bin" / "workerd"

def capnp_str(s): return json.dumps(s)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--bundle", type=Path, default=ROOT / "src" / "workers" / "build",
                    help="the built Worker to serve (index.js and index_bg.wasm), to compare two builds")
    ap.add_argument("--policies", type=Path, default=ROOT / "policies",
                    help="the policy directory to publish (default: the example policies), to compare two policies")
    ap.add_argument("--profile", metavar="OUT.cpuprofile",
                    help="only sample the gateway's CPU (V8 profiler through workerd's inspector) under the chat load "
                         "and print where it goes; writes the profile for Chrome DevTools")
    ap.add_argument("--limits", choices=("none", "objects", "limited"), default="none",
                    help="Durable Object limit counters: none (no LIMITER binding), objects, or limited key and team")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gateway-workerd-"))
    # workerd embeds files relative to its config: everything goes into one directory.
    HERE = work
    for f in ("index.js", "index_bg.wasm"):
        shutil.copy(args.bundle / f, work / f)
    for f in ("gateway-entry.js", "stand-ins.js", "proxy.js", "profile.mjs"):
        shutil.copy(ROOT / "scripts" / "workerd" / f, work / f)
    mp = free_port()
    mock = Process("wd-mock", ["taskset", "-c", "0", str(REL / "mock-provider"), "--listen", f"127.0.0.1:{mp}", "--api-key", SETTINGS["OPENAI_API_KEY"], "--chunk-delay-ms", "2"])
    procs = [mock]
    try:
        murl = f"http://127.0.0.1:{mp}"; wait_healthy(murl, mock, 30)
        pdir = work / "policy"
        subprocess.run([str(REL / "gateway-policy"), "publish", str(args.policies), "--dir", str(pdir)], capture_output=True, check=True)
        active = (pdir / "active").read_text().strip()
        key = "gw-" + "ab" * 32
        record = {"id": "key_bench", "name": "bench", "created_at_ms": 0}
        limits = {"requests_per_minute": 10**9, "tokens_per_minute": 10**12, "concurrent_streams": 10**6,
                  "budget": {"currency": "CNY", "day": "1000000", "month": "10000000"}}
        keys = {}
        if args.limits == "limited":
            record.update(team="bench-team", limits=limits)
            keys["team/bench-team"] = json.dumps({"name": "bench-team", "limits": limits})
        keys[f"key/{hashlib.sha256(key.encode()).hexdigest()}"] = json.dumps(record)
        seed = {"keys": keys,
                "policy": {"policy/active": active, f"policy/{active}": (pdir / f"{active}.json").read_text()}}
        bases = {"OPENAI_BASE_URL": f"{murl}/v1", "DEEPSEEK_BASE_URL": f"{murl}/deepseek", "SILICONFLOW_BASE_URL": f"{murl}/siliconflow/v1",
                 "OPENROUTER_BASE_URL": f"{murl}/openrouter/api/v1", "GEMINI_BASE_URL": f"{murl}/gemini/v1beta",
                 "WORKERS_AI_BASE_URL": f"{murl}/workers-ai/client/v4/accounts/acc/ai"}
        settings = {**SETTINGS, "POLICY_REFRESH_MS": "10000", **bases, "SEED": json.dumps(seed)}
        bindings = ",\n    ".join(f"(name = {capnp_str(k)}, text = {capnp_str(v)})" for k, v in settings.items())
        objects = ""
        if args.limits != "none":
            bindings += ',\n    (name = "LIMITER", durableObjectNamespace = "Limiter")'
            objects = ('durableObjectNamespaces = [(className = "Limiter", uniqueKey = "gateway-limiter", '
                       'enableSql = true)],\n  durableObjectStorage = (inMemory = void),')
        gp, pp = free_port(), free_port()
        config = f'''using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "gateway", worker = .gateway),
    (name = "proxy", worker = .proxy),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "gw", address = "127.0.0.1:{gp}", http = (), service = "gateway"),
    (name = "px", address = "127.0.0.1:{pp}", http = (), service = "proxy"),
  ],
);
const gateway :Workerd.Worker = (
  modules = [
    (name = "entry.js", esModule = embed "gateway-entry.js"),
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
    (name = "stand-ins.js", esModule = embed "stand-ins.js"),
  ],
  compatibilityDate = "2026-04-01",
  bindings = [
    {bindings}
  ],
  {objects}
  globalOutbound = "internet",
);
const proxy :Workerd.Worker = (
  modules = [(name = "proxy.js", esModule = embed "proxy.js")],
  compatibilityDate = "2026-04-01",
  bindings = [(name = "UPSTREAM", text = {capnp_str(murl)})],
  globalOutbound = "internet",
);
'''
        cfg = HERE / "config.capnp"; cfg.write_text(config)
        ip = free_port()
        inspector = [f"--inspector-addr=127.0.0.1:{ip}"] if args.profile else []
        wd = Process("workerd", [str(WORKERD), "serve", str(cfg), "--verbose", *inspector])
        procs.append(wd)
        gurl, purl = f"http://127.0.0.1:{gp}", f"http://127.0.0.1:{pp}"
        wait_healthy(gurl, wd, 30)
        pid = wd.proc.pid
        seconds = args.seconds
        auth_gw = [f"authorization: Bearer {key}"]
        auth_mock = [f"authorization: Bearer {SETTINGS['OPENAI_API_KEY']}"]
        if args.profile:
            pin([pid], 1)
            load(f"{gurl}/v1/chat/completions", BODY, auth_gw, 8, 1)  # warm up
            prof = subprocess.Popen(["node", "--experimental-websocket", "--no-warnings", str(work / "profile.mjs"),
                                     f"127.0.0.1:{ip}", "gateway", str(seconds + 1), str(Path(args.profile).resolve())])
            import time
            time.sleep(0.5)
            r = load(f"{gurl}/v1/chat/completions", BODY, auth_gw, 8, seconds)
            print(f"gateway json 8 connections while sampled: {r['rps']:.0f} req/s, errors {r['errors']}", flush=True)
            prof.wait(timeout=60)
            return
        results = {}
        for name, url, auth in (("mock", murl, auth_mock), ("proxy", purl, auth_mock), ("gateway", gurl, auth_gw)):
            pin([pid], 1)
            for kind, body in (("json", BODY), ("stream", STREAM_BODY)):
                r = median_run(f"{url}/v1/chat/completions", body, auth, seconds / 2)
                results[f"{name}_{kind}"] = r
                print(f"{name:>8} {kind:>6} 1 connection (workerd on core 1): p50 {r['latency_ms']['p50']:.3f} ms, first token p50 {r['ttfb_ms']['p50']:.3f} ms, errors {r['errors']}", flush=True)
            if name == "mock":
                continue
            runs = []
            for _ in range(3):  # the median of three: a run's CPU per request wanders by ±10% on this VM
                before = cpu_seconds(pid)
                r = load(f"{url}/v1/chat/completions", BODY, auth, 8, seconds)
                cpu = cpu_seconds(pid) - before
                served = r["requests"] + r["rps"]
                runs.append((cpu / served * 1e6, r))
            cpu_us, r = sorted(runs, key=lambda x: x[0])[1]
            print(f"{name:>8}   json 8 connections: {r['rps']:.0f} req/s, CPU {cpu_us:.0f} µs/request (median of "
                  f"{', '.join(f'{c:.0f}' for c, _ in runs)}), errors {r['errors']}", flush=True)
            results[f"{name}_cpu_us"] = cpu_us
            if name == "gateway":
                # What the host costs around the chat path: no upstream (key lookup, log row), and before
                # authentication (log row only).
                for path in ("/v1/models", "/healthz"):
                    before = cpu_seconds(pid)
                    r = load(f"{url}{path}", "", auth, 8, seconds / 2)
                    cpu = cpu_seconds(pid) - before
                    served = r["requests"] + r["rps"]
                    results[f"gateway_get_{path.strip('/').replace('/', '_')}_cpu_us"] = cpu / served * 1e6
                    print(f"{name:>8} GET {path:<10} 8 connections: {r['rps']:.0f} req/s, CPU {cpu / served * 1e6:.0f} "
                          f"µs/request, errors {r['errors']}", flush=True)
        for name in ("proxy", "gateway"):
            added = results[f"{name}_json"]["latency_ms"]["p50"] - results["mock_json"]["latency_ms"]["p50"]
            ttft = results[f"{name}_stream"]["ttfb_ms"]["p50"] - results["mock_stream"]["ttfb_ms"]["p50"]
            print(f"{name}: adds {added:.3f} ms (JSON), {ttft:.3f} ms to the first token, "
                  f"{results[f'{name}_cpu_us']:.0f} µs CPU per request")
        print(f"gateway / proxy CPU per request: {results['gateway_cpu_us'] / results['proxy_cpu_us']:.1f}x")
        out = ROOT / "target" / "bench" / "workerd.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
