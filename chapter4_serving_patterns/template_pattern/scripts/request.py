"""`make request` (SPEC 3.10 Demo): generate a pattern from vars.yaml into a temporary
directory, list its tree, copy its model in (`make models`), start it as its Procfile does on
a free port, send GET /predict/test, print the prediction and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(command: list[str], cwd: Path) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the generated service exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the generated service is not ready after {START_TIMEOUT_S} s")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="template-request-") as temporary:
        target = Path(temporary) / "generated"
        run([sys.executable, "-m", "builder", "--variable-file", "vars.yaml",
             "--output-dir", str(target)], TEMPLATE_DIR)  # fmt: skip
        for path in sorted(target.rglob("*")):
            if path.is_file():
                print("  ", path.relative_to(target))
        run(["make", "--no-print-directory", "models"], target)
        port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "API_PORT": str(port), "WORKERS": "1"}
        command = [sys.executable, "-m", "gunicorn", "--config", "src/gunicorn.conf.py"]
        process = subprocess.Popen([*command, "src.app.app:create_app()"], cwd=target, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(process, url)
            response = httpx.get(f"{url}/predict/test", timeout=10.0)
            print(f"GET /predict/test → {response.status_code} {response.text}", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
