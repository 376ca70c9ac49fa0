"""The served model's life in the API (SPEC 2.2 behaviour 3-5): load, fetch, poll, reload, swap.

- Start: MODEL_DIR holding a verified model (the init container put it there, or an earlier run)
  is served at once, without asking the model DB (behaviour 5). Otherwise a background task
  fetches MODEL_SOURCE, retrying with backoff; until it succeeds /ready and the prediction
  routes answer 503 `model_not_ready` with the reason ("alias production not found ..."). The
  lifespan waits for the task's first attempt (at most FIRST_ATTEMPT_WAIT_S), so that the first
  answers already carry that reason rather than "fetching".
- Reload, every MODEL_POLL_INTERVAL_S (> 0) and on POST /admin/reload: resolve the source; when
  the model.onnx it names differs from the served one, download and verify it (src.loader),
  open a new session and self-test it, install it into MODEL_DIR (so that a restart serves it
  without the model DB), then swap. The swap is one assignment: a request that already holds
  the old ServedModel finishes on it.
- A failure keeps the served model, increments `model_reload_failures_total{reason}` and is
  logged. One reload at a time (a lock): the poll and /admin/reload never interleave.

Network and disk work runs in worker threads; the event loop only awaits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import numpy as np

from src.app.serving import ServedModel
from src.common.metrics import counter
from src.configurations import Settings
from src.loader import fetch
from src.loader.fetch import Fetcher, FetchError, Resolved
from src.ml.model import Model

# The self-test: each probability row of the data sample sums to 1 within this.
PROBABILITY_SUM_TOLERANCE = 1e-3
# How long start-up waits for the first fetch: bounded, so that a model DB that does not answer
# cannot hold the worker's boot (gunicorn restarts a worker that does not boot in time).
FIRST_ATTEMPT_WAIT_S = 5.0
logger = logging.getLogger("model_load_pattern")
T = TypeVar("T")


class SelfTestFailed(Exception):
    """The fetched graph does not load, or its data sample does not give a probability vector
    of the right width summing to 1."""

    reason = "self_test"


@dataclass(frozen=True)
class ReloadOutcome:
    changed: bool
    served: ServedModel


class Reloader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.source = settings.model_source  # the source followed; /admin/reload may change it
        self.served: ServedModel | None = None
        # /metadata's `source`: uri, resolved version, sha256, fetched_at (None: not known)
        self.record: dict[str, Any] | None = None
        self.not_ready_reason = f"fetching {self.source}"
        self.fetcher = Fetcher(settings)
        self.first_attempt_done = asyncio.Event()
        self._lock = asyncio.Lock()
        self._failures = counter(
            "model_reload_failures_total",
            "Fetches or reloads that failed; the served model was kept",
            ("reason",),
        )
        self._swaps = counter("model_reloads_total", "Models swapped in after a reload")

    def close(self) -> None:
        self.fetcher.close()

    # --- start --------------------------------------------------------------------------------

    def load_installed(self) -> bool:
        """Serve the verified model of MODEL_DIR, if it holds one (no network call)."""
        directory = self.settings.model_dir
        sha256 = fetch.installed_sha256(directory)
        if sha256 is None:
            self.not_ready_reason = f"MODEL_DIR holds no verified model yet: fetching {self.source}"
            return False
        try:
            model = open_and_self_test(directory)
        except SelfTestFailed as error:
            logger.warning("MODEL_DIR refused: %s", error, extra={"model_dir": str(directory)})
            self.not_ready_reason = f"MODEL_DIR refused ({error}): fetching {self.source}"
            return False
        self._swap(model, fetch.installed_record(directory, sha256))
        logger.info("model loaded from MODEL_DIR", extra=self._log_fields())
        return True

    async def run(self) -> None:
        """The background task: fetch until a model is served, then poll (if enabled)."""
        attempt = 0
        while self.served is None:
            loaded = await self._attempt()
            self.first_attempt_done.set()
            if not loaded:
                attempt += 1
                await asyncio.sleep(self.fetcher.backoff_s(attempt))
        self.first_attempt_done.set()
        interval = self.settings.model_poll_interval_s
        while interval > 0:
            await asyncio.sleep(interval)
            await self._attempt()

    async def wait_for_first_attempt(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.first_attempt_done.wait(), FIRST_ATTEMPT_WAIT_S)

    async def _attempt(self) -> bool:
        try:
            await self.reload()
        except (FetchError, SelfTestFailed):
            return False  # counted and logged by reload()
        except Exception:
            # A bug must not end the loop: the model served so far keeps serving.
            self._failures.labels("error").inc()
            logger.exception("reload failed unexpectedly", extra=self._log_fields())
            return False
        return True

    # --- reload -------------------------------------------------------------------------------

    async def reload(self, source: str | None = None) -> ReloadOutcome:
        """Resolve `source` (default: the one followed) and swap in what it names if that is
        another model; raises FetchError or SelfTestFailed, the served model staying."""
        uri = source or self.source
        async with self._lock:
            try:
                outcome = await self._reload(uri)
            except (FetchError, SelfTestFailed) as error:
                self._failures.labels(error.reason).inc()
                if self.served is None:
                    self.not_ready_reason = str(error)
                logger.warning(
                    "reload failed, keeping the model served: %s",
                    error,
                    extra={**self._log_fields(), "reason": error.reason, "source": uri},
                )
                raise
            self.source = uri
            return outcome

    async def _reload(self, uri: str) -> ReloadOutcome:
        resolved = await _in_thread(self.fetcher.resolve, uri)
        if self.served is not None and resolved.sha256 == self.served.card.sha256:
            self._note_same_model(resolved)
            return ReloadOutcome(changed=False, served=self.served)
        staging = self._staging()
        try:
            await _in_thread(self.fetcher.download, resolved, staging)
            model = await anyio.to_thread.run_sync(open_and_self_test, staging)
            record = resolved.record()
            # Kept before it is served: whoever sees the new version can find it in MODEL_DIR.
            await anyio.to_thread.run_sync(self._install, staging, record)
            served = self._swap(model, record)
            self._swaps.inc()
            logger.info("model swapped in", extra={**self._log_fields(), "source": uri})
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ReloadOutcome(changed=True, served=served)

    def _swap(self, model: Model, record: dict[str, Any] | None) -> ServedModel:
        served = ServedModel(model, self.settings.max_rows)
        self.served, self.record = served, record  # requests in flight keep the old object
        return served

    def _note_same_model(self, resolved: Resolved) -> None:
        """Same graph under another name (an alias moved to an identical version, another
        source): the record says where it is now resolved from; fetched_at stays."""
        record = self.record or {}
        if (record.get("uri"), record.get("version")) != (resolved.uri, resolved.version):
            self.record = {**resolved.record(), "fetched_at": record.get("fetched_at")}

    def _staging(self) -> Path:
        """Inside MODEL_DIR (installing is then a rename), else a private temporary directory
        when MODEL_DIR cannot be written (the model is then served, not kept)."""
        try:
            return fetch.stage(self.settings.model_dir)
        except OSError as error:
            logger.warning("MODEL_DIR is not writable: %s", error, extra=self._log_fields())
            return Path(tempfile.mkdtemp(prefix="model_load-"))

    def _install(self, staging: Path, record: dict[str, Any]) -> None:
        if staging.parent != self.settings.model_dir:
            return
        try:
            fetch.install(staging, self.settings.model_dir, record)
        except OSError as error:  # serving goes on; a restart fetches again
            logger.warning("could not keep the model in MODEL_DIR: %s", error)

    def _log_fields(self) -> dict[str, Any]:
        if self.served is None:
            return {"model_dir": str(self.settings.model_dir)}
        card = self.served.card
        return {"model_name": card.name, "model_version": card.version,
                "model_dir": str(self.settings.model_dir)}  # fmt: skip


async def _in_thread(function: Callable[..., T], *args: object) -> T:
    # Abandoned on shutdown: a download blocked on the network ends by its own time-out.
    return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)


def open_and_self_test(directory: Path) -> Model:
    """A session on the directory's model, self-tested on its data sample (SPEC 2.2 b. 4)."""
    try:
        model = Model.load(directory)  # checks the output width against label.json itself
    except Exception as error:  # onnxruntime raises its own types for a graph it cannot load
        raise SelfTestFailed(f"{type(error).__name__}: {error}") from error
    sums = model.sample_prediction.probabilities.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=PROBABILITY_SUM_TOLERANCE):
        raise SelfTestFailed(
            f"the data sample's probabilities sum to {sums.tolist()}, not 1: refusing the model"
        )
    return model
