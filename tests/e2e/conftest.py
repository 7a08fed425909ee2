import pytest

from harness import SELECTED_HOSTS as SELECTED, Mock, NativeGateway, WorkerdGateway

HOSTS = {"native": NativeGateway, "workerd": WorkerdGateway}


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
