"""Item ids → image files in DATA_DIR, and nothing else (SPEC 3.9 behaviour 1).

A client names an image by an item id (`{"data": "0006"}`), never by a path. The rules:

- An id matches `^[A-Za-z0-9_-]{1,64}$` in full, else `InvalidItemId` (422 `invalid_input`).
  No `.`, `/` or `\\` can appear, so an id can never climb out of the directory or name a
  hidden file, whatever the client encoded.
- An id resolves to `DATA_DIR/<id>.<ext>` for the first of `IMAGE_EXTENSIONS` that exists as a
  regular file whose real path (every symlink followed) lies inside the real `DATA_DIR`. Nothing
  found, or only a symlink leading out, or something that is not a regular file →
  `ItemNotFound` (404 `not_found`). Out-of-directory targets are refused as "not found", so a
  client cannot probe the file system outside.
- No other path is ever opened: candidates are built from the validated id only, and a file is
  read through its resolved real path with `O_NOFOLLOW` and checked again on the open
  descriptor (same device and inode as resolved, regular file), so a file swapped for a symlink
  between resolving and reading is refused too.

API (standard library only; the errors carry `status` and `code` like image_input's, so a
service maps them to its error envelope without a table of its own):

    items = ItemDirectory(Path(settings.data_dir))
    item = items.resolve("0006")          # Item(item_id, path, size, mtime_ns); stats, no read
    content, item = items.read(item, max_bytes=5 << 20)   # bytes + the stat taken before reading
    page = items.list_ids(limit=100, offset=0)            # ItemPage(ids, total, limit, offset)

`Item.size` and `Item.mtime_ns` identify the file's content for caches (a changed file gets a
new mtime). `read` returns the stat of the descriptor it read, taken before the bytes, so that a
cache keyed on it never stores new bytes under an old key: if the file changes while it is read,
the next request sees another mtime and misses.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ITEM_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The order decides which file an id names when several exist (0006.png before 0006.jpg).
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")
# O_NOFOLLOW refuses a symlink as the last component; O_NONBLOCK keeps a FIFO swapped in from
# blocking the open (it is then refused as not a regular file).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_READ_CHUNK = 1 << 16


class ItemError(ValueError):
    """An item request a service must refuse; `status` and `code` say how (SPEC 0.6)."""

    status = 422
    code = "invalid_input"


class InvalidItemId(ItemError):
    status = 422
    code = "invalid_input"


class ItemNotFound(ItemError):
    status = 404
    code = "not_found"


class ItemTooLarge(ItemError):
    status = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class Item:
    """A resolved item: its real path inside DATA_DIR and the stat that identifies its content."""

    item_id: str
    path: Path  # real path (no symlink left), inside the real DATA_DIR
    size: int
    mtime_ns: int
    device: int
    inode: int


@dataclass(frozen=True)
class ItemPage:
    ids: list[str]
    total: int
    limit: int
    offset: int


def validate_item_id(item_id: object) -> str:
    """The id itself when it matches `^[A-Za-z0-9_-]{1,64}$`, else InvalidItemId."""
    if not isinstance(item_id, str) or ITEM_ID_PATTERN.fullmatch(item_id) is None:
        raise InvalidItemId(
            "item id must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (no path)"
        )
    return item_id


class ItemDirectory:
    """The image items of one directory (DATA_DIR); see the module docstring for the rules."""

    def __init__(self, root: Path) -> None:
        # Resolved once: ids are checked against the directory as it was when the service
        # started, so a DATA_DIR symlink re-pointed later cannot widen what is served.
        self.root = Path(os.path.realpath(root))

    def resolve(self, item_id: str) -> Item:
        """The file `item_id` names (no byte read yet), else InvalidItemId / ItemNotFound."""
        validate_item_id(item_id)
        for extension in IMAGE_EXTENSIONS:
            item = self._candidate(item_id, extension)
            if item is not None:
                return item
        raise ItemNotFound(f"no item {item_id!r}")

    def read(self, item: Item, max_bytes: int | None = None) -> tuple[bytes, Item]:
        """The item's bytes and its stat taken on the open descriptor before reading.

        ItemNotFound when the path no longer holds the resolved file (deleted, or swapped for
        a symlink or another file); ItemTooLarge above `max_bytes`.
        """
        try:
            fd = os.open(item.path, _OPEN_FLAGS)
        except OSError as error:
            raise ItemNotFound(f"item {item.item_id!r} is no longer readable") from error
        with os.fdopen(fd, "rb") as file:
            opened = os.fstat(file.fileno())
            if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (
                item.device,
                item.inode,
            ):
                raise ItemNotFound(f"item {item.item_id!r} changed while it was read")
            if max_bytes is not None and opened.st_size > max_bytes:
                raise ItemTooLarge(f"item {item.item_id!r} is larger than {max_bytes} bytes")
            content = _read_at_most(file, max_bytes, item.item_id)
        return content, _item(item.item_id, item.path, opened)

    def list_ids(self, limit: int = 100, offset: int = 0) -> ItemPage:
        """Sorted ids that resolve (as `resolve` would), `limit` of them from `offset` on."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        ids = sorted(self._ids_present())
        return ItemPage(
            ids=ids[offset : offset + limit], total=len(ids), limit=limit, offset=offset
        )

    def _candidate(self, item_id: str, extension: str) -> Item | None:
        candidate = self.root / f"{item_id}.{extension}"
        real = Path(os.path.realpath(candidate))
        if self.root not in real.parents:
            return None  # a symlink leading out of DATA_DIR: refused as if absent
        try:
            info = os.stat(real, follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return _item(item_id, real, info)

    def _ids_present(self) -> set[str]:
        ids: set[str] = set()
        try:
            names = os.listdir(self.root)
        except OSError:
            return set()
        for name in names:
            item_id, dot, extension = name.rpartition(".")
            if not dot or extension not in IMAGE_EXTENSIONS:
                continue
            if ITEM_ID_PATTERN.fullmatch(item_id) and self._candidate(item_id, extension):
                ids.add(item_id)
        return ids


def _item(item_id: str, path: Path, info: os.stat_result) -> Item:
    return Item(
        item_id=item_id,
        path=path,
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        device=info.st_dev,
        inode=info.st_ino,
    )


def _read_at_most(file: BinaryIO, max_bytes: int | None, item_id: str) -> bytes:
    # The size check on fstat is not enough for a file that grows while it is read.
    limit = None if max_bytes is None else max_bytes + 1
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = file.read(_READ_CHUNK if limit is None else min(_READ_CHUNK, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise ItemTooLarge(f"item {item_id!r} is larger than {max_bytes} bytes")
    return b"".join(chunks)
