"""Artifact files under ARTIFACT_ROOT/<model_id>/<version>/<filename> (SPEC 1.3 behaviour 4).

An upload streams into a temporary file inside ARTIFACT_ROOT (same file system, so the final
rename is atomic), hashing as it goes and stopping as soon as it passes MAX_ARTIFACT_BYTES; the
body is never held in memory. Published files are read-only: artifacts are immutable.
Filenames are checked before any path is built, and every path is checked to stay inside the
root, so no name can reach outside it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

FILENAME_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
_FILENAME = re.compile(FILENAME_PATTERN)
WRITE_BATCH_BYTES = 1024 * 1024  # hand the disk work to a thread a megabyte at a time
INCOMING_DIR = ".incoming"  # not a valid model id, so never a published path


class PayloadTooLarge(Exception):
    pass


class InvalidFilename(ValueError):
    pass


def check_filename(filename: str) -> str:
    """`^[A-Za-z0-9._-]{1,128}$`, and no `..` anywhere (so neither `.` nor `..` as a name)."""
    if not _FILENAME.fullmatch(filename) or ".." in filename or filename == ".":
        raise InvalidFilename(
            f"invalid filename {filename!r}: use 1-128 of A-Z a-z 0-9 . _ - and no '..'"
        )
    return filename


@dataclass
class Upload:
    temp_path: Path
    size: int
    sha256: str


class _HashingWriter:
    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)

    def finish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())  # the bytes are on disk before the rename makes them visible
        self.file.close()


class ArtifactStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root.resolve()
        self.max_bytes = max_bytes
        self.incoming = self.root / INCOMING_DIR

    def prepare(self) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)

    def writable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)

    @staticmethod
    def relative_path(model_id: str, version: int, filename: str) -> str:
        return f"{model_id}/{version}/{check_filename(filename)}"

    def path_of(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidFilename(f"{relative!r} is outside the artifact root")
        return path

    async def receive(self, chunks: AsyncIterator[bytes], declared_size: int | None) -> Upload:
        """Stream a body into a temporary file; PayloadTooLarge as soon as it is too big."""
        if declared_size is not None and declared_size > self.max_bytes:
            raise PayloadTooLarge(self._too_large())
        self.prepare()  # cheap, and survives someone emptying the root while we run
        handle, name = tempfile.mkstemp(dir=self.incoming, prefix="upload-")
        temp_path = Path(name)
        writer = _HashingWriter(os.fdopen(handle, "wb"))
        try:
            batch = bytearray()
            async for chunk in chunks:
                if writer.size + len(batch) + len(chunk) > self.max_bytes:
                    raise PayloadTooLarge(self._too_large())
                batch += chunk
                if len(batch) >= WRITE_BATCH_BYTES:
                    await anyio.to_thread.run_sync(writer.write, bytes(batch))
                    batch.clear()
            await anyio.to_thread.run_sync(writer.write, bytes(batch))
            await anyio.to_thread.run_sync(writer.finish)
        except BaseException:
            writer.file.close()
            temp_path.unlink(missing_ok=True)
            raise
        return Upload(temp_path=temp_path, size=writer.size, sha256=writer.digest.hexdigest())

    def _too_large(self) -> str:
        return f"artifact larger than MAX_ARTIFACT_BYTES ({self.max_bytes} bytes)"

    def publish(self, upload: Upload, relative: str) -> None:
        final = self.path_of(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(upload.temp_path, 0o444)
        os.replace(upload.temp_path, final)

    def unpublish(self, relative: str) -> None:
        self.path_of(relative).unlink(missing_ok=True)

    @staticmethod
    def discard(upload: Upload) -> None:
        upload.temp_path.unlink(missing_ok=True)
