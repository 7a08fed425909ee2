import os

import pytest

from harness import Mock, NativeGateway, WorkerdGateway

HOSTS = {"native": NativeGateway, "workerd": WorkerdGateway}
# GATEWAY_E2E_HOSTS=native runs one host only (quick local iterations); the test command runs both.
SELECTED = [h for h in os.environ.get("GATEWAY_E2E_HOSTS", "native,workerd").split(",") if h]


@pytest.fixture(scope="session")
def mock():
    m = Mock()
    yield m
    m.stop()


@pytest.fixture(scope="session", params=SELECTED)
def gw(request, mock):
    gateway = HOSTS[request.param](mock)
    yield gateway
    gateway.stop()
