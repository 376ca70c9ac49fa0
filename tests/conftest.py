"""Fixtures shared by every test process: real Redis and PostgreSQL servers, launcher logs.

`make test` (tests/support/run_tests.py) starts one Redis and one PostgreSQL for the whole run
and hands their addresses to every pytest process through TEST_REDIS_URL / TEST_POSTGRES_PORT;
a pytest run started by hand starts its own. Fault drills take private servers they may stop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator

import pytest

from tests.support import launcher
from tests.support.services import PostgresServer, RedisServer, ServiceUnavailable


def _require(factory: Callable[[], RedisServer | PostgresServer]) -> RedisServer | PostgresServer:
    try:
        return factory()
    except ServiceUnavailable as missing:
        if os.environ.get("CI"):
            raise  # CI installs every service: a missing one is a failure, not a skip
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the run's shared Redis (database 0 is flushed here, once per test process)."""
    shared = os.environ.get("TEST_REDIS_URL")
    if shared:
        import redis

        redis.Redis.from_url(shared).flushall()
        yield shared
        return
    server = _require(RedisServer)
    assert isinstance(server, RedisServer)
    server.start()
    yield server.url
    server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The run's shared PostgreSQL; take a fresh database from `postgres_database`."""
    shared_port = os.environ.get("TEST_POSTGRES_PORT")
    if shared_port:
        server = _require(lambda: PostgresServer(port=int(shared_port)))
        assert isinstance(server, PostgresServer)
        yield server  # started and stopped by run_tests.py
        return
    server = _require(PostgresServer)
    assert isinstance(server, PostgresServer)
    server.start()
    yield server
    server.close()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Callable[[], str]:
    """Factory: each call creates an empty database and returns its SQLAlchemy URL."""
    return postgres_server.create_database


@pytest.fixture
def private_redis() -> Iterator[Callable[..., RedisServer]]:
    """Factory of Redis servers a fault drill may stop and restart (`appendonly=True`)."""
    servers: list[RedisServer] = []

    def start(*, appendonly: bool = False) -> RedisServer:
        server = _require(lambda: RedisServer(appendonly=appendonly))
        assert isinstance(server, RedisServer)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def private_postgres() -> Iterator[Callable[[], PostgresServer]]:
    """Factory of PostgreSQL servers a fault drill may stop and restart."""
    servers: list[PostgresServer] = []

    def start() -> PostgresServer:
        server = _require(PostgresServer)
        assert isinstance(server, PostgresServer)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the logs of every running pattern process to a failing test's report."""
    report = yield
    if report.failed:
        for running in launcher.ACTIVE:
            report.sections.append((f"logs of {running.pattern.name}", running.logs()))
    return report
