"""Resolve a source, download its model directory, verify it, install it (SPEC 2.2 b. 1-2).

One implementation for `python -m src.loader` (the init container, the `loader` job) and for the
API's fetcher and reloader. httpx and the standard library only: no onnxruntime, no FastAPI.

Verification, all of it before anything is installed:
- every file's sha256 equals the one the model DB lists for it (modeldb:// sources);
- model.onnx's equals metadata.json's `sha256`, the resolved one, and MODEL_SHA256 when set;
- label.json equals metadata.json's `labels`.

Installing: files are staged in a hidden directory inside the destination (the same filesystem,
so each rename is atomic; a k8s emptyDir is a mount point, which cannot itself be replaced),
then renamed into place one by one, metadata.json last: it commits the set. A reader always
checks model.onnx against metadata.json, so it never serves a half-installed directory.

Time-outs on every request; connection errors, time-outs, 429 and 5xx are retried FETCH_RETRIES
times with exponential backoff; a 404 is an answer ("not found") and is not retried.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx

from src.loader.sources import FileSource, HttpSource, ModelDbSource, Source, parse_source
from src.ml.model_dir import FILES, sha256_of

MODEL_FILE, LABEL_FILE, METADATA_FILE = FILES
# What was fetched from where: /metadata `source` after a restart from MODEL_DIR.
SOURCE_RECORD = "source.json"
# Rename order: metadata.json last, it commits the set.
INSTALL_ORDER = (LABEL_FILE, SOURCE_RECORD, MODEL_FILE, METADATA_FILE)
STAGING_PREFIX = ".incoming-"
REGISTRY_PATH = "/v0.1/api/registry/{project}/{model}/{ref}"
CHUNK_BYTES = 1 << 20
logger = logging.getLogger("model_load_pattern.loader")
T = TypeVar("T")


class FetchError(Exception):
    """The model could not be obtained; `reason` labels metrics, `exit_code` ends the loader."""

    reason = "error"
    exit_code = 1


class SourceNotFound(FetchError):
    reason = "not_found"
    exit_code = 2


class VerificationFailed(FetchError):
    reason = "verification"
    exit_code = 3


class SourceUnreachable(FetchError):
    reason = "unreachable"
    exit_code = 4


class _Transient(Exception):
    """A failure worth retrying: no connection, a time-out, 429 or 5xx."""


class FetchSettingsLike(Protocol):
    """The settings fields the fetcher reads (src.configurations.FetchSettings)."""

    @property
    def model_db_url(self) -> str: ...
    @property
    def model_sha256(self) -> str | None: ...
    @property
    def fetch_timeout_s(self) -> float: ...
    @property
    def fetch_retries(self) -> int: ...
    @property
    def fetch_backoff_s(self) -> float: ...
    @property
    def fetch_backoff_max_s(self) -> float: ...


@dataclass(frozen=True)
class Artifact:
    filename: str
    location: str  # a URL, or an absolute path for file:// sources
    sha256: str | None  # what the source lists for it (the model DB does), else None


@dataclass(frozen=True)
class Resolved:
    """What a source names right now: the files to fetch and the model.onnx they must give."""

    uri: str
    version: int | None  # the model DB's version number; None for file and http sources
    sha256: str  # of model.onnx
    artifacts: tuple[Artifact, ...]

    def record(self) -> dict[str, Any]:
        """/metadata's `source`: uri, resolved version, sha256, fetched_at."""
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"uri": self.uri, "version": self.version, "sha256": self.sha256,
                "fetched_at": fetched_at}  # fmt: skip


class Fetcher:
    """Resolves and downloads sources; one HTTP client (keep-alive) for its lifetime."""

    def __init__(self, settings: FetchSettingsLike) -> None:
        self.settings = settings
        self.model_db_url = settings.model_db_url.rstrip("/")
        self.client = httpx.Client(timeout=settings.fetch_timeout_s, follow_redirects=True)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    # --- resolve -----------------------------------------------------------------------------

    def resolve(self, uri: str) -> Resolved:
        """The files `uri` names now and the model.onnx sha256 they must give (raises FetchError,
        or InvalidSource for a string that is no source)."""
        source = parse_source(uri)
        resolved = self._resolve(uri, source)
        pinned = self.settings.model_sha256
        if pinned is not None and pinned != resolved.sha256:
            raise VerificationFailed(
                f"MODEL_SHA256 pins {pinned}, but {uri} holds a model.onnx of sha256 "
                f"{resolved.sha256}"
            )
        return resolved

    def _resolve(self, uri: str, source: Source) -> Resolved:
        if isinstance(source, ModelDbSource):
            return self._resolve_modeldb(uri, source)
        if isinstance(source, FileSource):
            return _resolve_file(uri, source)
        return self._resolve_http(uri, source)

    def _resolve_modeldb(self, uri: str, source: ModelDbSource) -> Resolved:
        path = REGISTRY_PATH.format(project=source.project, model=source.model, ref=source.ref)
        url = self.model_db_url + path
        where = f"{source.project}/{source.model}"
        not_found = f"{source.describe_ref()} not found for {where}"
        body = self._with_retries(url, lambda: self._get_json(url, not_found))
        listed = {item["filename"]: item for item in body.get("artifacts", [])}
        version = int(body["version"])
        missing = [name for name in FILES if name not in listed]
        if missing:
            raise SourceNotFound(
                f"version {version} of {where} has no {', '.join(missing)} in the model DB"
            )
        sha256 = str(listed[MODEL_FILE]["sha256"])
        described = (body.get("metadata") or {}).get("sha256")
        if described is not None and described != sha256:
            raise VerificationFailed(
                f"version {version} of {where}: the model DB lists model.onnx with sha256 "
                f"{sha256}, its metadata says {described}"
            )
        artifacts = tuple(
            Artifact(
                name, self.model_db_url + listed[name]["download_path"], listed[name]["sha256"]
            )
            for name in FILES
        )
        return Resolved(uri, version, sha256, artifacts)

    def _resolve_http(self, uri: str, source: HttpSource) -> Resolved:
        url = source.base_url + METADATA_FILE
        metadata = self._with_retries(url, lambda: self._get_json(url, f"{url} not found"))
        artifacts = tuple(Artifact(name, source.base_url + name, None) for name in FILES)
        return Resolved(uri, None, _described_sha256(metadata, url), artifacts)

    def _get_json(self, url: str, not_found: str) -> dict[str, Any]:
        try:
            response = self.client.get(url)
        except httpx.TransportError as error:
            raise _Transient(_describe(error)) from error
        _check_status(response, not_found)
        try:
            body = response.json()
        except ValueError as error:
            raise VerificationFailed(f"{url} did not answer JSON: {error}") from error
        if not isinstance(body, dict):
            raise VerificationFailed(f"{url} did not answer a JSON object")
        return body

    # --- download and verify -----------------------------------------------------------------

    def download(self, resolved: Resolved, staging: Path) -> None:
        """Every artifact into `staging`, each checked against the source's sha256, then the
        directory as a whole (raises FetchError; `staging` is the caller's to remove)."""
        for artifact in resolved.artifacts:
            target = staging / artifact.filename
            digest = self._with_retries(
                artifact.location, functools.partial(self._copy, artifact, target)
            )
            if artifact.sha256 is not None and digest != artifact.sha256:
                raise VerificationFailed(
                    f"{artifact.filename} from {artifact.location} has sha256 {digest}, "
                    f"the model DB lists {artifact.sha256}"
                )
        verify_directory(staging, resolved.sha256)

    def _copy(self, artifact: Artifact, target: Path) -> str:
        if artifact.location.startswith("/"):
            return _copy_file(Path(artifact.location), target)
        digest = hashlib.sha256()
        try:
            with self.client.stream("GET", artifact.location) as response:
                _check_status(response, f"{artifact.location} not found")
                with target.open("wb") as stream:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        digest.update(chunk)
                        stream.write(chunk)
                    _sync(stream)
        except httpx.TransportError as error:
            raise _Transient(_describe(error)) from error
        return digest.hexdigest()

    # --- retries -----------------------------------------------------------------------------

    def _with_retries(self, what: str, call: Callable[[], T]) -> T:
        attempts = self.settings.fetch_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except _Transient as error:
                if attempt == attempts:
                    raise SourceUnreachable(
                        f"{what}: {error} ({attempts} attempt{'s' * (attempts > 1)})"
                    ) from error
                delay = self.backoff_s(attempt)
                logger.warning(
                    "fetch failed, retrying",
                    extra={"url": what, "error": str(error), "attempt": attempt,
                           "retry_in_s": delay},
                )  # fmt: skip
                time.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def backoff_s(self, attempt: int) -> float:
        """Exponential: FETCH_BACKOFF_S, twice that, ... capped at FETCH_BACKOFF_MAX_S."""
        base, cap = self.settings.fetch_backoff_s, self.settings.fetch_backoff_max_s
        return float(min(cap, base * 2 ** (attempt - 1)))


def _check_status(response: httpx.Response, not_found: str) -> None:
    status = response.status_code
    if status == 200:
        return
    if status == 404:
        raise SourceNotFound(f"{not_found} ({_server_says(response)})")
    if status == 429 or status >= 500:
        raise _Transient(f"{response.request.url} answered {status}")
    raise SourceUnreachable(f"{response.request.url} answered {status} ({_server_says(response)})")


def _server_says(response: httpx.Response) -> str:
    """The envelope's `error` (SPEC 0.6) when the server sent one."""
    response.read()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"the server says: {body['error']}"
    return f"HTTP {response.status_code}"


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _resolve_file(uri: str, source: FileSource) -> Resolved:
    directory = Path(source.directory)
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise SourceNotFound(f"{directory} has no {', '.join(missing)}")
    metadata = _read_json(directory / METADATA_FILE)
    artifacts = tuple(Artifact(name, str(directory / name), None) for name in FILES)
    return Resolved(
        uri, None, _described_sha256(metadata, str(directory / METADATA_FILE)), artifacts
    )


def _copy_file(source: Path, target: Path) -> str:
    digest = hashlib.sha256()
    try:
        with source.open("rb") as reader, target.open("wb") as writer:
            for chunk in iter(lambda: reader.read(CHUNK_BYTES), b""):
                digest.update(chunk)
                writer.write(chunk)
            _sync(writer)
    except FileNotFoundError as error:
        raise SourceNotFound(f"{source} does not exist") from error
    except OSError as error:
        raise SourceUnreachable(f"{source}: {error}") from error
    return digest.hexdigest()


def _sync(stream: Any) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def _described_sha256(metadata: dict[str, Any], where: str) -> str:
    sha256 = metadata.get("sha256")
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise VerificationFailed(f"{where} has no sha256 of model.onnx")
    return sha256


# --- a model directory on disk ------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise VerificationFailed(f"{path} is unreadable: {error}") from error
    if not isinstance(value, dict):
        raise VerificationFailed(f"{path} is not a JSON object")
    return value


def verify_directory(directory: Path, expected_sha256: str | None = None) -> str:
    """The sha256 of a model directory's model.onnx once it matches metadata.json (and
    `expected_sha256`), and label.json equals metadata.json's labels; VerificationFailed else."""
    metadata = _read_json(directory / METADATA_FILE)
    labels = _read_json(directory / LABEL_FILE)
    try:
        digest = sha256_of(directory / MODEL_FILE)
    except OSError as error:
        raise VerificationFailed(f"{directory / MODEL_FILE} is unreadable: {error}") from error
    described = metadata.get("sha256")
    if digest != described:
        raise VerificationFailed(f"model.onnx has sha256 {digest}, metadata.json says {described}")
    if expected_sha256 is not None and digest != expected_sha256:
        raise VerificationFailed(f"model.onnx has sha256 {digest}, expected {expected_sha256}")
    if metadata.get("labels") != labels:
        raise VerificationFailed("label.json differs from the labels in metadata.json")
    return digest


def installed_sha256(directory: Path) -> str | None:
    """model.onnx's sha256 when `directory` holds a verified model directory, else None."""
    if not all((directory / name).is_file() for name in FILES):
        return None
    try:
        return verify_directory(directory)
    except VerificationFailed:
        return None


def installed_record(directory: Path, sha256: str) -> dict[str, Any] | None:
    """The source record installed with the model of sha256 `sha256`, if there is a valid one."""
    try:
        record = json.loads((directory / SOURCE_RECORD).read_text())
    except (OSError, ValueError):
        return None
    valid = (
        isinstance(record, dict)
        and record.get("sha256") == sha256
        and isinstance(record.get("uri"), str)
        and isinstance(record.get("version"), int | None)
        and isinstance(record.get("fetched_at"), str | None)
    )
    return (
        {key: record[key] for key in ("uri", "version", "sha256", "fetched_at")} if valid else None
    )


def stage(destination: Path) -> Path:
    """A fresh staging directory inside `destination` (created if needed); staging directories
    an interrupted run left behind are removed first (OSError when it is not writable)."""
    destination.mkdir(parents=True, exist_ok=True)
    for leftover in destination.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=destination))


def install(staging: Path, destination: Path, record: dict[str, Any]) -> None:
    """Rename a verified staging directory's files into `destination`, metadata.json last."""
    (staging / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    for name in INSTALL_ORDER:
        os.replace(staging / name, destination / name)
    staging.rmdir()
    directory = os.open(destination, os.O_RDONLY)
    try:
        os.fsync(directory)  # the renames themselves survive a crash
    finally:
        os.close(directory)


@dataclass(frozen=True)
class Loaded:
    resolved: Resolved
    changed: bool  # False: the destination already held this very model


def load(uri: str, destination: Path, settings: FetchSettingsLike) -> Loaded:
    """The loader's whole job: resolve, and unless `destination` already holds that model,
    download, verify and install it."""
    with Fetcher(settings) as fetcher:
        resolved = fetcher.resolve(uri)
        if installed_sha256(destination) == resolved.sha256:
            return Loaded(resolved, changed=False)
        staging = stage(destination)
        try:
            fetcher.download(resolved, staging)
            install(staging, destination, resolved.record())
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Loaded(resolved, changed=True)
