"""src/ml/items.py on its own: id rules, resolution inside DATA_DIR, symlinks, reads, listing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from src.ml.items import (
    IMAGE_EXTENSIONS,
    InvalidItemId,
    ItemDirectory,
    ItemNotFound,
    ItemTooLarge,
    validate_item_id,
)

BAD_IDS = [
    "",
    "a" * 65,
    "../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "..",
    ".hidden",
    "0000.png",
    "0000\n",
    "\u0661\u0662",  # Arabic-Indic digits: \d would take them, the id rule does not
    "a b",
    "a\x00b",
]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """DATA_DIR with a few items, and a sentinel file beside it (outside)."""
    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"sentinel outside DATA_DIR")
    for name, content in {
        "0000.png": b"png zero",
        "0001.jpg": b"jpg one",
        "0002.webp": b"webp two",
        "both.png": b"png both",
        "both.jpg": b"jpg both",
        "Item_A-1.gif": b"gif",
        "notes.txt": b"not an image extension",
        ".hidden.png": b"hidden",
        "two.dots.png": b"id with a dot",
    }.items():
        (data / name).write_bytes(content)
    (data / "dir.png").mkdir()
    (data / "escape.png").symlink_to(outside)
    (data / "inside.png").symlink_to(data / "0000.png")
    (data / "dangling.png").symlink_to(tmp_path / "missing.png")
    return data, outside


@pytest.mark.parametrize("item_id", BAD_IDS)
def test_malformed_ids_are_refused_with_422(item_id: str) -> None:
    with pytest.raises(InvalidItemId) as raised:
        validate_item_id(item_id)
    assert (raised.value.status, raised.value.code) == (422, "invalid_input")


@pytest.mark.parametrize("item_id", BAD_IDS)
def test_resolve_refuses_malformed_ids_before_touching_the_disk(
    layout: tuple[Path, Path], item_id: str
) -> None:
    data, _ = layout
    with pytest.raises(InvalidItemId):
        ItemDirectory(data).resolve(item_id)


def test_non_string_ids_are_refused() -> None:
    for value in (None, 7, b"0000", ["0000"]):
        with pytest.raises(InvalidItemId):
            validate_item_id(value)


@pytest.mark.parametrize("item_id", ["0", "a" * 64, "Item_A-1", "-", "_"])
def test_well_formed_ids_pass(item_id: str) -> None:
    assert validate_item_id(item_id) == item_id


def test_resolve_finds_each_accepted_extension(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    items = ItemDirectory(data)
    for item_id, name in [("0000", "0000.png"), ("0001", "0001.jpg"), ("0002", "0002.webp")]:
        item = items.resolve(item_id)
        assert item.path == data.resolve() / name
        info = (data / name).stat()
        assert (item.size, item.mtime_ns) == (info.st_size, info.st_mtime_ns)


def test_extension_order_decides_between_two_files(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    assert ItemDirectory(data).resolve("both").path.name == "both.png"
    assert IMAGE_EXTENSIONS.index("png") < IMAGE_EXTENSIONS.index("jpg")


@pytest.mark.parametrize("item_id", ["missing", "notes", "dir", "escape", "dangling", "hidden"])
def test_absent_or_unsafe_items_are_404(layout: tuple[Path, Path], item_id: str) -> None:
    data, _ = layout
    with pytest.raises(ItemNotFound) as raised:
        ItemDirectory(data).resolve(item_id)
    assert (raised.value.status, raised.value.code) == (404, "not_found")


def test_symlink_inside_data_dir_is_served_through_its_real_path(
    layout: tuple[Path, Path],
) -> None:
    data, _ = layout
    item = ItemDirectory(data).resolve("inside")
    assert item.path == (data / "0000.png").resolve()


def test_data_dir_given_through_a_symlink_works(layout: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = layout
    alias = tmp_path / "alias"
    alias.symlink_to(data)
    content, _ = ItemDirectory(alias).read(ItemDirectory(alias).resolve("0000"))
    assert content == b"png zero"


def test_read_returns_bytes_and_the_stat_it_read(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    items = ItemDirectory(data)
    item = items.resolve("0001")
    content, read_item = items.read(item)
    assert content == b"jpg one"
    assert read_item == item


def test_read_refuses_a_file_swapped_for_a_symlink_out(layout: tuple[Path, Path]) -> None:
    data, outside = layout
    items = ItemDirectory(data)
    item = items.resolve("0000")
    (data / "0000.png").unlink()
    (data / "0000.png").symlink_to(outside)
    with pytest.raises(ItemNotFound):
        items.read(item)


def test_read_refuses_a_file_replaced_by_another(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    items = ItemDirectory(data)
    item = items.resolve("0000")
    replacement = data / "replacement.tmp"
    replacement.write_bytes(b"another file")
    os.replace(replacement, data / "0000.png")
    with pytest.raises(ItemNotFound):
        items.read(item)


def test_read_refuses_a_deleted_file(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    items = ItemDirectory(data)
    item = items.resolve("0000")
    (data / "0000.png").unlink()
    with pytest.raises(ItemNotFound):
        items.read(item)


def test_read_enforces_max_bytes(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    items = ItemDirectory(data)
    item = items.resolve("0000")
    assert items.read(item, max_bytes=len(b"png zero"))[0] == b"png zero"
    with pytest.raises(ItemTooLarge) as raised:
        items.read(item, max_bytes=3)
    assert (raised.value.status, raised.value.code) == (413, "payload_too_large")


def test_a_changed_file_gets_a_new_identity(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    items = ItemDirectory(data)
    before = items.resolve("0000")
    info = (data / "0000.png").stat()
    os.utime(data / "0000.png", ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    after = items.resolve("0000")
    assert after.mtime_ns == before.mtime_ns + 1_000_000_000


def test_list_ids_holds_exactly_the_ids_that_resolve(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    page = ItemDirectory(data).list_ids(limit=100, offset=0)
    assert page.ids == sorted(["0000", "0001", "0002", "Item_A-1", "both", "inside"])
    assert page.total == 6
    items = ItemDirectory(data)
    for item_id in page.ids:
        items.resolve(item_id)


def test_list_ids_pages(layout: tuple[Path, Path]) -> None:
    data, _ = layout
    items = ItemDirectory(data)
    everything = items.list_ids(limit=100).ids
    assert items.list_ids(limit=2, offset=0).ids == everything[:2]
    assert items.list_ids(limit=2, offset=4).ids == everything[4:6]
    assert items.list_ids(limit=2, offset=100).ids == []
    assert items.list_ids(limit=0).ids == []
    with pytest.raises(ValueError):
        items.list_ids(limit=-1)


def test_missing_data_dir_lists_nothing_and_finds_nothing(tmp_path: Path) -> None:
    items = ItemDirectory(tmp_path / "absent")
    assert items.list_ids().total == 0
    with pytest.raises(ItemNotFound):
        items.resolve("0000")


def test_sentinel_outside_is_never_opened(layout: tuple[Path, Path]) -> None:
    """Every way the sentinel can be named fails, and its access time never moves."""
    data, outside = layout
    os.utime(outside, ns=(0, outside.stat().st_mtime_ns))
    items = ItemDirectory(data)
    for item_id in [*BAD_IDS, "escape", "secret", "../secret"]:
        with pytest.raises((InvalidItemId, ItemNotFound)):
            items.read(items.resolve(item_id))
    items.list_ids()
    assert outside.stat().st_atime_ns == 0
