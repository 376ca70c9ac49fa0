"""Start a pattern's real processes on free loopback ports, wait for readiness, stop them all.

One launcher for the tests, `make dev`, `make demo` and `make bench` (CONVENTIONS 5):

    with launch("chapter2_training/model_db", env={"DATABASE_URL": url}) as running:
        httpx.get(running.url() + "/v0.1/health")

Each process runs in its own process group with its log in a file; stopping sends SIGTERM to the
group, then SIGKILL after a grace period. Nothing sleeps and hopes: readiness is polled with a
deadline and an early exit of the process ends the wait with its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.pattern import REPO_ROOT, Command, ImageTagError, Pattern, unexpected
from tests.support.ports import LOOPBACK, free_port, port_accepts, wait_until
from tests.support.services import PostgresServer, RedisServer

STOP_GRACE_S = 10.0
JOB_TIMEOUT_S = 600.0
LOG_TAIL_LINES = 80

# Launches that are running now, so that a failing test can show their logs.
ACTIVE: list[RunningPattern] = []


def base_environment(pattern: Pattern, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The inherited environment with this interpreter's bin first on PATH and the pattern's
    own directory as the only PYTHONPATH entry: a test process of another pattern must not
    leak its `src` into this one."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(pattern.directory)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PORT", None)
    env.update(extra or {})
    return env


@dataclass
class RunningProcess:
    command: Command
    cwd: Path
    env: dict[str, str]
    log_path: Path
    port: int
    popen: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.command.name

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() reaches its children
            )

    def exit_reason(self) -> str | None:
        if self.popen is not None and self.popen.poll() is not None:
            return f"{self.name} exited with {self.popen.returncode}\n{self.log_tail()}"
        return None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """Send a signal to the whole process group (SIGSTOP/SIGCONT/SIGKILL drills)."""
        if self.alive():
            os.killpg(self.pid, signum)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGCONT)
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait()
        # Children that outlived their leader still belong to the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        return self.popen.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class RunningPattern:
    pattern: Pattern
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, RunningProcess] = field(default_factory=dict)

    def url(self, process: str | None = None) -> str:
        """Base URL of a process; the entry process by default."""
        name = process or self.pattern.entry
        if name is None:
            raise KeyError(f"{self.pattern.name} has no processes")
        return self.processes[name].url

    def wait_ready(self, name: str) -> None:
        process = self.processes[name]
        check = self.pattern.ready[name]
        if check == "port":
            condition = lambda: port_accepts(process.port)  # noqa: E731
        else:
            condition = lambda: http_ok(process.url + check)  # noqa: E731
        wait_until(
            condition,
            timeout_s=self.pattern.ready_timeout_s,
            what=f"{self.pattern.name}/{name} ready ({check})",
            abort=process.exit_reason,
        )

    def start_process(self, name: str) -> RunningProcess:
        process = self.processes[name]
        process.start()
        self.wait_ready(name)
        return process

    def restart_process(self, name: str) -> RunningProcess:
        self.processes[name].stop()
        return self.start_process(name)

    def run_job(self, name: str, *, env: Mapping[str, str] | None = None) -> str:
        """Run one Procfile.jobs line to completion; returns its output, raises on failure."""
        return run_job(self.pattern, name, {**self.env, **(env or {})})

    def logs(self) -> str:
        return "\n".join(
            f"----- {name} ({process.log_path}) -----\n{process.log_tail()}"
            for name, process in self.processes.items()
        )

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            process.stop()


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def job_environment(command: Command, env: Mapping[str, str]) -> dict[str, str]:
    """The Procfile line's own `VAR=value` pairs, unless the caller set that name explicitly."""
    return {**command.env, **env}


def run_job(pattern: Pattern, name: str, env: Mapping[str, str] | None = None) -> str:
    command = pattern.job_commands[name]
    result = subprocess.run(
        command.argv,
        cwd=pattern.directory,
        env=job_environment(command, base_environment(pattern, env)),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"job {pattern.name}/{name} exited with {result.returncode}:\n{output}")
    return output


@contextlib.contextmanager
def system_services(
    pattern: Pattern, env: dict[str, str], *, default_ports: bool = False
) -> Iterator[None]:
    """Start the Redis / PostgreSQL a pattern needs unless the caller gave their URLs; on free
    ports, or with `default_ports` (make dev) on 6379 / 5432 so the README's URLs work."""
    with contextlib.ExitStack() as stack:
        if "redis" in pattern.services and "REDIS_URL" not in env:
            redis_server = RedisServer(port=6379 if default_ports else None).start()
            stack.callback(redis_server.close)
            env["REDIS_URL"] = redis_server.url
            print(f"--- started redis-server on {redis_server.url}", flush=True)
        if "postgres" in pattern.services and "DATABASE_URL" not in env:
            postgres_server = PostgresServer(port=5432 if default_ports else None).start()
            stack.callback(postgres_server.close)
            env["DATABASE_URL"] = postgres_server.create_database(pattern.name)
            print(f"--- started PostgreSQL: {env['DATABASE_URL']}", flush=True)
        yield


def process_ports(pattern: Pattern) -> dict[str, str]:
    """`<NAME>_PORT` and `<NAME>_URL` for every process, on free loopback ports."""
    env = {"HOST": LOOPBACK}
    for command in pattern.processes.values():
        port = free_port()
        env[command.port_variable] = str(port)
        env[command.url_variable] = f"http://{LOOPBACK}:{port}"
    return env


@contextlib.contextmanager
def launch(
    pattern: Pattern | Path | str,
    *,
    env: Mapping[str, str] | None = None,
    only: list[str] | None = None,
    run_jobs: bool = True,
) -> Iterator[RunningPattern]:
    """Run a pattern's jobs and processes; stop them all when the block ends.

    `env` overrides everything else (free ports, service URLs, a Procfile line's own pairs).
    `only` starts a subset of the processes; the others keep their ports and can be started
    later with `start_process` (fault drills).
    """
    if not isinstance(pattern, Pattern):
        pattern = Pattern.load(REPO_ROOT / pattern)
    overrides = {**process_ports(pattern), **(env or {})}
    log_dir = Path(tempfile.mkdtemp(prefix=f"launch-{pattern.name}-"))
    with system_services(pattern, overrides):
        running = RunningPattern(pattern, overrides, log_dir)
        for name, command in pattern.processes.items():
            running.processes[name] = RunningProcess(
                command=command,
                cwd=pattern.directory,
                env=job_environment(command, base_environment(pattern, overrides)),
                log_path=log_dir / f"{name}.log",
                port=int(overrides[command.port_variable]),
            )
        ACTIVE.append(running)
        try:
            if run_jobs:
                for job in pattern.jobs:
                    running.run_job(job)
            for name in only if only is not None else list(pattern.processes):
                running.start_process(name)
            yield running
        except BaseException:
            print(running.logs(), file=sys.stderr)
            raise
        finally:
            running.stop()
            ACTIVE.remove(running)


# --- command line: `make dev`, `make request`, `make <job>`, `make build` -------------------


def _dev(pattern: Pattern) -> int:
    """Services the pattern needs, its jobs, then every Procfile process under honcho."""
    merged = {k: v for k, v in os.environ.items() if k in ("REDIS_URL", "DATABASE_URL")}
    if "redis" in pattern.services and "REDIS_URL" not in merged and port_accepts(6379):
        merged["REDIS_URL"] = f"redis://{LOOPBACK}:6379/0"  # a redis-server already running
    with system_services(pattern, merged, default_ports=True):
        for job in pattern.jobs:
            print(f"--- job {job}", flush=True)
            print(run_job(pattern, job, merged), end="", flush=True)
        honcho = [sys.executable, "-m", "honcho", "-f", "Procfile", "start"]
        try:
            return subprocess.run(
                honcho, cwd=pattern.directory, env=base_environment(pattern, merged), check=False
            ).returncode
        except KeyboardInterrupt:
            return 0


def default_url(pattern: Pattern, process: str) -> str:
    """`<NAME>_URL` from the environment, else the process's default port from settings."""
    command = pattern.processes[process]
    if command.url_variable in os.environ:
        return os.environ[command.url_variable]
    port = os.environ.get(command.port_variable) or pattern.default_ports.get(process)
    if port is None:
        raise SystemExit(f"set {command.url_variable}: no default port for {process}")
    return f"http://{LOOPBACK}:{port}"


def send_demo_requests(
    pattern: Pattern, urls: Mapping[str, str], env: Mapping[str, str] | None = None
) -> int:
    """Run pattern.toml's demo steps in order, printing each exchange; returns how many
    answered other than expected (pattern.unexpected).

    A step is a request to one process, or a Procfile.jobs line run with `env` (the launch's
    environment; the caller's own otherwise)."""
    failures = 0
    with httpx.Client(timeout=30.0) as client:
        for step in pattern.demo:
            if step.title:
                print(f"# {step.title}")
            if step.job is not None:
                print(f"$ make {step.job}")
                print("  " + run_job(pattern, step.job, env).strip().replace("\n", "\n  "))
                continue
            process = step.process or pattern.entry
            assert process is not None
            response = client.request(step.method, urls[process] + step.path, json=step.body)
            print(f"$ {step.method} {step.path}  -> {response.status_code}")
            for header in step.headers:
                print(f"  {header}: {response.headers.get(header, '(absent)')}")
            print(f"  {response.text[:400]}")
            failures += unexpected(step, response.status_code)
    return failures


def _build(pattern: Pattern, dry_run: bool = False) -> int:
    """`docker build` of every image, tagged as Pattern.images() says; with `dry_run` only the
    commands are printed. A tag that cannot be made (no model yet) fails before any build."""
    try:
        images = pattern.images()
    except ImageTagError as error:
        print(f"make build: {error}", file=sys.stderr)
        return 1
    for dockerfile, tag in images.items():
        command = ["docker", "build", "-t", tag, "-f", dockerfile, "."]
        print("$ " + " ".join(command), flush=True)
        if dry_run:
            continue
        if subprocess.run(command, cwd=pattern.directory, check=False).returncode != 0:
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.support.launcher")
    parser.add_argument("action", choices=["dev", "request", "job", "build"])
    parser.add_argument("pattern", help="pattern directory, relative to the repository root")
    parser.add_argument("job", nargs="?", help="the Procfile.jobs line to run (action job)")
    parser.add_argument(
        "--dry-run", action="store_true", help="build: print the docker commands, run none"
    )
    args = parser.parse_args(argv)
    pattern = Pattern.load(REPO_ROOT / args.pattern)
    if args.action == "dev":
        return _dev(pattern)
    if args.action == "request":
        urls = {name: default_url(pattern, name) for name in pattern.processes}
        return 1 if send_demo_requests(pattern, urls) else 0
    if args.action == "job":
        if args.job not in pattern.job_commands:
            parser.error(f"{args.job!r} is not in {pattern.relative}/Procfile.jobs")
        command = pattern.job_commands[args.job]
        env = job_environment(command, base_environment(pattern))
        return subprocess.run(command.argv, cwd=pattern.directory, env=env, check=False).returncode
    return _build(pattern, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
