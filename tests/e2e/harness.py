"""Starts the mock provider and the gateway (native host or workerd via wrangler) for end-to-end tests.

Every process is started in its own session and its whole process group is killed afterwards: killing
`wrangler` alone would leave `workerd` running.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("GATEWAY_BIN_DIR", ROOT / "target" / "debug"))

# Small limits so the tests can reach them quickly.
SETTINGS = {
    "OPENAI_API_KEY": "sk-mock-upstream",
    "DEEPSEEK_API_KEY": "sk-mock-upstream",
    "SILICONFLOW_API_KEY": "sk-mock-upstream",
    "OPENROUTER_API_KEY": "sk-mock-upstream",
    "GEMINI_API_KEY": "sk-mock-upstream",
    "WORKERS_AI_API_KEY": "sk-mock-upstream",
    "ANTHROPIC_API_KEY": "sk-mock-upstream",
    "OPENROUTER_HEADERS": "HTTP-Referer: https://example.com/app; X-OpenRouter-Title: Gateway E2E",
    "MAX_BODY_BYTES": "65536",
    "UPSTREAM_TIMEOUT_MS": "3000",
    "STREAM_IDLE_TIMEOUT_MS": "1500",
    # A published policy reaches the gateway within a fraction of a second.
    "POLICY_REFRESH_MS": "300",
    "GATEWAY_ADMIN_TOKEN": "admin-e2e",
    # The mock serves the images apps link to from http://127.0.0.1, which the default (`public`: https on
    # public addresses only) refuses; the pipeline and unit tests cover that default.
    "IMAGE_FETCH": "any",
}
ADMIN_TOKEN = SETTINGS["GATEWAY_ADMIN_TOKEN"]
# GATEWAY_E2E_HOSTS=native runs one host only (quick local iterations); the test command runs both.
SELECTED_HOSTS = [h for h in os.environ.get("GATEWAY_E2E_HOSTS", "native,workerd").split(",") if h]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool_env() -> dict:
    env = dict(os.environ)
    node_bin = ROOT / "node_modules" / ".bin"
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"
    env["PATH"] = f"{cargo_bin}:{node_bin}:{env.get('PATH', '')}"
    env.update(CI="true", WRANGLER_SEND_METRICS="false", WRANGLER_SEND_ERROR_REPORTS="false", DO_NOT_TRACK="1")
    return env


class Process:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict | None = None, cwd: Path = ROOT):
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self._log = open(self.log_path, "w+b")
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not print {pattern!r}; output:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        # start_new_session made the child a group leader: its pid is the group id, even after it exits.
        pgid = self.proc.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                self.proc.poll()  # reap the leader so it does not linger as a zombie
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                continue
            break
        self._log.close()


def wait_healthy(url: str, proc: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited; output:\n{proc.output()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not healthy at {url} after {timeout}s; output:\n{proc.output()[-4000:]}")


class Mock:
    def __init__(self):
        self.proc = Process("mock-provider", [str(BIN_DIR / "mock-provider"), "--listen", "127.0.0.1:0",
                                              "--api-key", SETTINGS["OPENAI_API_KEY"]])
        port = self.proc.wait_for_line(r"listening on http://127\.0\.0\.1:(\d+)", 30).group(1)
        self.url = f"http://127.0.0.1:{port}"

    def bases(self) -> dict:
        """Each provider's base URL, pointed at the mock's route for it."""
        return {"OPENAI_BASE_URL": f"{self.url}/v1", "DEEPSEEK_BASE_URL": f"{self.url}/deepseek",
                "SILICONFLOW_BASE_URL": f"{self.url}/siliconflow/v1",
                "OPENROUTER_BASE_URL": f"{self.url}/openrouter/api/v1",
                "GEMINI_BASE_URL": f"{self.url}/gemini/v1beta",
                "WORKERS_AI_BASE_URL": f"{self.url}/workers-ai/client/v4/accounts/acc123/ai",
                "ANTHROPIC_BASE_URL": f"{self.url}/anthropic/v1"}

    def faults(self, **routes: str | None) -> None:
        """Forces a fault model on whole provider routes (`deepseek="mock-500"`); `None` clears one."""
        req = urllib.request.Request(f"{self.url}/__mock/faults", data=json.dumps(routes).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stats(self) -> dict:
        """`abandoned`: answers whose caller (the gateway) hung up before they were complete; `last_auth`: the
        `authorization` header each `/compat/<shape>` route last received."""
        with urllib.request.urlopen(f"{self.url}/__mock/stats", timeout=5) as r:
            return json.loads(r.read())

    def abandoned(self) -> int:
        return self.stats()["abandoned"]

    def reset_faults(self) -> None:
        req = urllib.request.Request(f"{self.url}/__mock/faults?reset", data=b"{}",
                                     headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self):
        self.proc.stop()


class Gateway:
    """What the tests need from a running gateway, whichever host runs it."""

    name: str
    url: str
    key: str

    def log_row(self, request_id: str, timeout: float = 15) -> dict:
        """The request's log row, waiting for it: rows are written after the response."""
        deadline = time.monotonic() + timeout
        while True:
            row = self._find_row(request_id)
            if row is not None or time.monotonic() > deadline:
                if row is None:
                    raise AssertionError(f"no log row for {request_id} on {self.name}")
                return row
            time.sleep(0.2)

    def _find_row(self, request_id: str) -> dict | None:
        raise NotImplementedError

    def rows_since(self, ts_ms: int) -> list[dict]:
        """Every log row stamped at or after `ts_ms` (ms since the epoch), oldest first."""
        raise NotImplementedError

    def query(self, sql: str) -> list[dict]:
        """Rows of a read-only SQL query on this gateway's database (SQLite, or D1 through wrangler)."""
        raise NotImplementedError

    def publish(self, source: Path) -> str:
        """Publishes policy sources with `gateway-policy publish` to this gateway's store; returns the hash."""
        raise NotImplementedError

    def rollback(self) -> str:
        raise NotImplementedError

    def create_key(self, **attrs: str) -> str:
        """A new gateway key with these attributes (`team`, `tier`)."""
        raise NotImplementedError

    def admin_status(self) -> dict:
        req = urllib.request.Request(f"{self.url}/admin/status", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def refresh_health(self) -> None:
        """Makes the gateway aggregate provider health from its log now (natively it does so on its own)."""

    def stop(self):
        raise NotImplementedError


def policy_cli(*args: str, env: dict | None = None) -> str:
    out = subprocess.run([str(BIN_DIR / "gateway-policy"), *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"gateway-policy {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip()


class NativeGateway(Gateway):
    name = "native"

    def __init__(self, mock: Mock, policy: Path | None = None, threads: int = 2, settings: dict | None = None,
                 after: "NativeGateway | None" = None):
        """`after`: a stopped gateway whose database (keys, log) this one takes over, as a restart would."""
        if after is not None:
            self.dir, self.db, self.key = after.dir, after.db, after.key
        else:
            self.dir = Path(tempfile.mkdtemp(prefix="gateway-native-"))
            self.db = self.dir / "gateway.sqlite"
            self.key = self.create_key()
        # Without a compiled policy file, a directory `publish --dir` writes to (empty until then).
        self.policy_dir = self.dir / "policy"
        self.policy_dir.mkdir(exist_ok=True)
        env = dict(os.environ, **mock.bases(), **SETTINGS, **(settings or {}))
        args = [str(BIN_DIR / "gateway"), "serve", "--listen", "127.0.0.1:0", "--db", str(self.db),
                "--threads", str(threads), "--policy", str(policy or self.policy_dir)]
        self.proc = Process("gateway-native", args, env=env)
        port = self.proc.wait_for_line(r"listening on http://127\.0\.0\.1:(\d+)", 30).group(1)
        self.url = f"http://127.0.0.1:{port}"
        wait_healthy(self.url, self.proc, 30)

    def create_key(self, **attrs: str) -> str:
        extra = [a for k, v in attrs.items() for a in (f"--{k}", v)]
        created = subprocess.run([str(BIN_DIR / "gateway"), "keys", "create", "--name", "e2e", *extra,
                                  "--db", str(self.db)], capture_output=True, text=True, check=True)
        return created.stdout.strip()

    def publish(self, source: Path) -> str:
        return policy_cli("publish", str(source), "--dir", str(self.policy_dir))

    def rollback(self) -> str:
        return policy_cli("rollback", "--dir", str(self.policy_dir))

    def log_source(self) -> list[str]:
        """`gateway-policy replay`'s arguments for this gateway's request log (its SQLite file)."""
        return ["--db", str(self.db)]

    def _find_row(self, request_id: str) -> dict | None:
        conn = sqlite3.connect(self.db, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM request_logs WHERE id = ?", (request_id,)).fetchone()
            return dict(row) if row else None
        finally:
            conn.close()

    def rows_since(self, ts_ms: int) -> list[dict]:
        conn = sqlite3.connect(self.db, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute("SELECT * FROM request_logs WHERE ts_ms >= ? ORDER BY ts_ms", (int(ts_ms),))
            return [dict(r) for r in rows]
        finally:
            conn.close()

    def query(self, sql: str) -> list[dict]:
        conn = sqlite3.connect(self.db, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql)]
        finally:
            conn.close()

    def stop(self):
        self.proc.stop()


class WorkerdGateway(Gateway):
    """The Worker in workerd via `wrangler dev`, with local KV and D1 persisted to a temporary folder."""

    name = "workerd"

    def __init__(self, mock: Mock, settings: dict | None = None):
        self.state = Path(tempfile.mkdtemp(prefix="gateway-workerd-"))
        self.env = tool_env()
        self.wrangler(["d1", "migrations", "apply", "DB", "--local"])
        self.key = self.create_key()
        port = free_port()
        settings = dict(SETTINGS, **mock.bases(), **(settings or {}))
        args = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", str(port), "--inspector-port", str(free_port()),
                "--persist-to", str(self.state), "--log-level", "warn", "--test-scheduled"]
        for k, v in settings.items():
            args += ["--var", f"{k}:{v}"]
        self.proc = Process("gateway-workerd", args, env=dict(self.env, GATEWAY_SKIP_WORKER_BUILD="1"))
        self.url = f"http://127.0.0.1:{port}"
        wait_healthy(self.url, self.proc, 90)

    def create_key(self, **attrs: str) -> str:
        extra = [a for k, v in attrs.items() for a in (f"--{k}", v)]
        created = subprocess.run([str(BIN_DIR / "gateway"), "keys", "create", "--name", "e2e", *extra, "--kv-json"],
                                 capture_output=True, text=True, check=True)
        entry = json.loads(created.stdout)
        self.wrangler(["kv", "key", "put", "--binding", "API_KEYS", entry["kv_key"], entry["kv_value"], "--local"])
        return entry["key"]

    def publish(self, source: Path) -> str:
        return policy_cli("publish", str(source), "--local", "--persist-to", str(self.state), "--wrangler", "wrangler",
                          env=self.env)

    def rollback(self) -> str:
        return policy_cli("rollback", "--local", "--persist-to", str(self.state), "--wrangler", "wrangler",
                          env=self.env)

    def log_source(self) -> list[str]:
        """`gateway-policy replay`'s arguments for this gateway's request log (local D1 through wrangler)."""
        return ["--d1", "DB", "--local", "--persist-to", str(self.state), "--wrangler", "wrangler"]

    def refresh_health(self) -> None:
        """Runs the Cron Trigger, which aggregates health from D1 into KV. Through `wrangler dev --test-scheduled`'s
        `/__scheduled` route: with static assets configured, Miniflare's `/cdn-cgi/handler/scheduled` calls the
        assets proxy in front of the Worker, which has no scheduled handler (it answers 500)."""
        urllib.request.urlopen(f"{self.url}/__scheduled?cron=*+*+*+*+*", timeout=30).read()

    def wrangler(self, args: list[str]) -> str:
        out = subprocess.run(["wrangler", *args, "--persist-to", str(self.state)], cwd=ROOT, env=self.env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"wrangler {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def _find_row(self, request_id: str) -> dict | None:
        if not re.fullmatch(r"req_[0-9a-f]{32}", request_id):
            raise ValueError(request_id)
        out = self.wrangler(["d1", "execute", "DB", "--local", "--json",
                             "--command", f"SELECT * FROM request_logs WHERE id = '{request_id}'"])
        rows = json.loads(out)[0]["results"]
        return rows[0] if rows else None

    def rows_since(self, ts_ms: int) -> list[dict]:
        out = self.wrangler(["d1", "execute", "DB", "--local", "--json", "--command",
                             f"SELECT * FROM request_logs WHERE ts_ms >= {int(ts_ms)} ORDER BY ts_ms"])
        return json.loads(out)[0]["results"]

    def query(self, sql: str) -> list[dict]:
        out = self.wrangler(["d1", "execute", "DB", "--local", "--json", "--command", sql])
        return json.loads(out)[0]["results"]

    def stop(self):
        self.proc.stop()


def clear_of_a_minute_edge(seconds: float = 15.0) -> None:
    """Wait, if need be, until at least `seconds` remain of the current UTC minute: rate limits count in whole UTC
    minutes, so a test that counts requests within one window must not straddle two."""
    left = 60.0 - time.time() % 60.0
    if left < seconds:
        time.sleep(left + 0.05)


def policy_sources(text: str) -> Path:
    """A policy directory with this text (and the repository's catalog); for `publish`."""
    d = Path(tempfile.mkdtemp(prefix="gateway-policy-"))
    (d / "main.policy").write_text(text)
    return d


def compile_policy(text: str) -> Path:
    """Writes a policy and compiles it with the gateway-policy CLI; returns the compiled artifact's path."""
    d = Path(tempfile.mkdtemp(prefix="gateway-policy-"))
    (d / "main.policy").write_text(text)
    out = d / "policy.json"
    subprocess.run([str(BIN_DIR / "gateway-policy"), "compile", str(d), "-o", str(out)], check=True,
                   capture_output=True, text=True)
    return out


HOSTS = {"native": NativeGateway, "workerd": WorkerdGateway}


def start_gateway(host: str, mock: Mock, settings: dict | None = None) -> Gateway:
    """A gateway of its own for one test module (one worker thread natively, so per-thread state such as
    cooldowns is seen by every request)."""
    return HOSTS[host](mock, settings=settings, **({"threads": 1} if host == "native" else {}))
