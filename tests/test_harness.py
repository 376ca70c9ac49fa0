"""The launcher and the service fixtures, driven on a toy pattern written into tmp_path."""

from __future__ import annotations

import os
import shutil
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.launcher import launch, send_demo_requests
from tests.support.pattern import Pattern, parse_procfile
from tests.support.ports import wait_until
from tests.support.services import PostgresServer, RedisServer

TOY_SERVER = textwrap.dedent(
    '''
    """Toy process: serves its environment; ready once the `prepare` job has run."""
    import http.server, json, os, pathlib, subprocess, sys

    here = pathlib.Path(__file__).parent
    if sys.argv[1] == "--prepare":
        (here / "prepared").write_text(os.environ.get("GREETING", ""))
        sys.exit(0)
    if sys.argv[1] == "--crash":
        print("toy: refusing to start, model file missing", flush=True)
        sys.exit(3)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (here / f"child-{sys.argv[1]}.pid").write_text(str(child.pid))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the load generators expect

        def do_GET(self):
            ready = self.path != "/ready" or (here / "prepared").exists()
            body = json.dumps(dict(os.environ)).encode() if ready else b"{}"
            self.send_response(200 if ready else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.do_GET()
        def log_message(self, *args):
            pass

    port = int(os.environ[sys.argv[1]])
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    '''
)


def write_toy(directory: Path, *, crash: bool = False) -> Path:
    (directory / "toy.py").write_text(TOY_SERVER)
    web = "python toy.py --crash" if crash else "GREETING=hello python toy.py WEB_PORT"
    (directory / "Procfile").write_text(f"web: {web}\nsidecar: python toy.py SIDECAR_PORT\n")
    (directory / "Procfile.jobs").write_text("prepare: python toy.py --prepare\n")
    (directory / "pattern.toml").write_text(
        textwrap.dedent(
            """
            [pattern]
            name = "toy"
            entry = "web"
            jobs = ["prepare"]
            ready_timeout_s = 20

            [processes.web]
            ready = "/ready"
            port = 8000

            [bench]
            users = []
            repeat = 1
            wrk_duration_s = 1
            wrk_connections = 4
            [[bench.wrk]]
            name = "ready"
            path = "/ready"
            [[bench.wrk]]
            name = "env"
            method = "POST"
            path = "/"
            body = {data = [[1.0, 2.0]]}
            [[bench.ratios]]
            title = "/ready vs itself"
            numerator = "ready"
            denominator = "ready"
            """
        )
    )
    return directory


@pytest.mark.skipif(shutil.which("wrk") is None and not os.environ.get("CI"), reason="no wrk")
def test_bench_writes_its_table_between_the_readme_markers(tmp_path: Path) -> None:
    from tests.support.bench import END, START, bench

    pattern = Pattern.load(write_toy(tmp_path))
    (tmp_path / "README.md").write_text(f"# toy\n\n{START}\nold table\n{END}\n\nafter\n")
    bench(pattern)
    readme = (tmp_path / "README.md").read_text()
    table = readme.split(START)[1].split(END)[0]
    assert "old table" not in table and readme.endswith(f"{END}\n\nafter\n")
    rows = {line.split(" | ")[0]: line for line in table.splitlines() if line.startswith("| wrk")}
    assert set(rows) == {"| wrk GET /ready", "| wrk POST /"}
    requests, errors = (
        int(cell) for cell in rows["| wrk GET /ready"].strip(" |").split(" | ")[-2:]
    )
    assert requests > 0 and errors == 0
    assert "| /ready vs itself | 1.00 |" in table


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_procfile_lines_split_into_env_pairs_and_argv(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# comment\n\napi: A=1 B=two gunicorn --config src/gunicorn.conf.py 'src.app:create()'\n"
    )
    command = parse_procfile(procfile)["api"]
    assert command.env == {"A": "1", "B": "two"}
    assert command.argv == ["gunicorn", "--config", "src/gunicorn.conf.py", "src.app:create()"]
    assert (command.port_variable, command.url_variable) == ("API_PORT", "API_URL")


def test_launch_runs_jobs_first_and_wires_every_process(tmp_path: Path) -> None:
    pattern = Pattern.load(write_toy(tmp_path))
    with launch(pattern, env={"EXTRA": "x"}) as running:
        environment = httpx.get(running.url() + "/ready").json()
        assert (tmp_path / "prepared").exists()  # the job ran before readiness was reached
        sidecar = running.processes["sidecar"]
        assert environment["GREETING"] == "hello"  # the Procfile line's own pair
        assert environment["EXTRA"] == "x"
        assert environment["SIDECAR_URL"] == sidecar.url
        assert environment["WEB_PORT"] == str(running.processes["web"].port)
        assert environment["PYTHONPATH"] == str(tmp_path)
        assert "PORT" not in environment


def test_demo_steps_print_the_response_headers_they_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write_toy(tmp_path)
    with (directory / "pattern.toml").open("a") as toml:
        toml.write('\n[[demo]]\npath = "/"\nheaders = ["Content-Length", "X-Cache"]\n')
    pattern = Pattern.load(directory)
    with launch(pattern) as running:
        size = len(httpx.get(running.url() + "/").content)
        assert send_demo_requests(pattern, {"web": running.url()}) == 0
    printed = capsys.readouterr().out
    assert f"  Content-Length: {size}\n" in printed
    assert "  X-Cache: (absent)\n" in printed


def test_caller_environment_wins_over_procfile_pairs(tmp_path: Path) -> None:
    with launch(write_toy(tmp_path), env={"GREETING": "override"}) as running:
        assert httpx.get(running.url() + "/").json()["GREETING"] == "override"
        assert (tmp_path / "prepared").read_text() == "override"


def test_stop_ends_every_process_group_including_children(tmp_path: Path) -> None:
    with launch(write_toy(tmp_path)) as running:
        leaders = [process.pid for process in running.processes.values()]
        children = [int((tmp_path / f"child-{name}.pid").read_text())
                    for name in ("WEB_PORT", "SIDECAR_PORT")]  # fmt: skip
        assert all(map(pid_alive, leaders + children))
        running.processes["sidecar"].signal(signal.SIGSTOP)  # a hung process still stops
    wait_until(lambda: not any(map(pid_alive, leaders + children)), timeout_s=15,
               what="every launched process gone")  # fmt: skip


def test_a_process_that_exits_at_start_fails_the_launch_with_its_log(tmp_path: Path) -> None:
    started = time.monotonic()
    with (
        pytest.raises(RuntimeError, match="exited with 3") as failure,
        launch(write_toy(tmp_path, crash=True)),
    ):
        pass
    assert "model file missing" in str(failure.value)
    assert time.monotonic() - started < 15  # the exit ended the wait, not the 20 s deadline


def test_redis_with_append_only_keeps_writes_across_a_restart(
    private_redis: Callable[..., RedisServer],
) -> None:
    server = private_redis(appendonly=True)
    redis.Redis.from_url(server.url).set("job", "accepted")
    server.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_timeout=1).ping()
    server.start()
    assert redis.Redis.from_url(server.url).get("job") == b"accepted"


def test_postgres_databases_are_fresh_and_survive_a_server_restart(
    private_postgres: Callable[[], PostgresServer],
) -> None:
    import sqlalchemy as sa

    server = private_postgres()
    first, second = server.create_database(), server.create_database()
    assert first != second
    engine = sa.create_engine(first)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x int)"))
        connection.execute(sa.text("INSERT INTO t VALUES (42)"))
    engine.dispose()
    server.stop()
    server.start()
    engine = sa.create_engine(first)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT x FROM t")).scalar_one() == 42
    engine.dispose()
