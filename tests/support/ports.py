"""Free loopback ports and readiness polling shared by the launcher and the service fixtures."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class DeadlineExceeded(TimeoutError):
    pass


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Poll `condition` until it holds; `abort` returns a reason to stop waiting early."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return
        if abort is not None and (reason := abort()):
            raise RuntimeError(f"gave up waiting for {what}: {reason}")
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"{what} not reached within {timeout_s:.0f} s")
        time.sleep(interval_s)
