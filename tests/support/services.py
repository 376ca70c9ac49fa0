"""Real Redis and PostgreSQL servers on free loopback ports, for tests, `make dev` and the demo.

No fakes: each class starts the real server binary in a directory of its own and stops it
again. PostgreSQL refuses to run as root, so as root (CI) it runs as the `postgres` user, with a
data directory that user owns; as a normal user (a laptop) it runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.ports import LOOPBACK, free_port, port_accepts, wait_until

START_TIMEOUT_S = 30.0
REDIS_INSTALL_HINT = "install it: apt-get install redis-server (Debian) or brew install redis"
POSTGRES_INSTALL_HINT = "install it: apt-get install postgresql (Debian) or brew install postgresql"


class ServiceUnavailable(RuntimeError):
    """The server binary is not installed on this machine."""


class RedisServer:
    """A private `redis-server`; `appendonly=True` keeps accepted writes across a restart."""

    def __init__(self, *, appendonly: bool = False, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable(f"redis-server not found; {REDIS_INSTALL_HINT}")
        self.binary = binary
        self.appendonly = appendonly
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
        ]  # fmt: skip
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: port_accepts(self.port),
            timeout_s=START_TIMEOUT_S,
            what=f"redis-server on port {self.port}",
            abort=self._exited,
        )
        return self

    def _exited(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            return f"redis-server exited with {self.process.returncode}"
        return None

    def stop(self) -> None:
        """Stop the server (a fault drill may `start()` it again on the same port)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _postgres_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
        candidate = Path(bindir.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    raise ServiceUnavailable(f"PostgreSQL's initdb not found; {POSTGRES_INSTALL_HINT}")


class PostgresServer:
    """A private PostgreSQL cluster (trust authentication, loopback only)."""

    superuser = "postgres"

    def __init__(self, *, port: int | None = None) -> None:
        self.bindir = _postgres_bindir()
        self.port = port or free_port()
        self.as_root = os.geteuid() == 0
        # pytest's temporary root is 0700 for root: the postgres user could not reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="postgres-", dir="/tmp"))
        self.datadir = self.directory / "data"
        self.logfile = self.directory / "server.log"
        if self.as_root:
            self.directory.chmod(0o755)
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._initialised = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{self.superuser}@{LOOPBACK}:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.strip() or result.stdout}")

    def start(self) -> PostgresServer:
        if not self._initialised:
            self._run(
                "initdb", "-D", str(self.datadir), "-U", self.superuser,
                "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C",
            )  # fmt: skip
            self._initialised = True
        options = (
            f"-p {self.port} -c listen_addresses={LOOPBACK} -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", options,
                  "-w", "-t", str(int(START_TIMEOUT_S)), "start")  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown); `start()` brings it back with its data."""
        if self._initialised and (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def create_database(self, prefix: str = "test") -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import psycopg2

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        connection = psycopg2.connect(
            host=LOOPBACK, port=self.port, user=self.superuser, dbname="postgres"
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
