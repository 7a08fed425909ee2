"""The native host with `--policy FILE`: a compiled policy file is loaded at start and re-read, so a new
compile takes effect without a restart; a broken file never replaces the policy in use."""

import json
import shutil
import time

import httpx
import pytest

from harness import ADMIN_TOKEN, SELECTED_HOSTS, NativeGateway, compile_policy

pytestmark = pytest.mark.skipif("native" not in SELECTED_HOSTS, reason="native host not selected")

FIRST = 'rule zh: when lang == zh -> deepseek:deepseek-flash\ndefault -> requested\n'
SECOND = 'rule zh: when lang == zh -> siliconflow:"deepseek-ai/DeepSeek-V3.2"\ndefault -> requested\n'


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.json"
    shutil.copy(compile_policy(FIRST), path)
    return path


@pytest.fixture(scope="module")
def native(mock, policy_file):
    gateway = NativeGateway(mock, policy=policy_file)
    yield gateway
    gateway.stop()


def chat(gw):
    return httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "你好，请介绍一下杭州"}]},
                      timeout=30)


def until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_compiled_policy_file_is_followed_and_reread(native, policy_file):
    first_hash = json.loads(policy_file.read_text())["hash"]
    r = chat(native)
    assert (r.headers["x-gateway-policy"], r.headers["x-gateway-provider"]) == (first_hash, "deepseek")

    # A broken file: requests keep the policy in use, and the admin endpoint says why.
    policy_file.write_text('{"format": 2, "hash": "broken"')
    time.sleep(1)
    assert chat(native).headers["x-gateway-policy"] == first_hash

    def status():
        # Per worker thread; each refreshes after a request finds its last check stale.
        return httpx.get(native.url + "/admin/status", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()

    until(lambda: "not a compiled policy" in (status()["policy"]["last_error"] or ""))
    assert status()["policy"]["hash"] == first_hash

    shutil.copy(compile_policy(SECOND), policy_file)
    until(lambda: chat(native).headers["x-gateway-provider"] == "siliconflow")
