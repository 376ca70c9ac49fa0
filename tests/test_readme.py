"""The top-level README's pattern map tells the truth about the repository."""

from __future__ import annotations

import re

from tests.support.pattern import REPO_ROOT, pattern_directories

ROW = re.compile(r"^\| (\d) [a-z]+ \| (?:\[(\w+)\]\(([\w/]+)\)|(\w+)) \| .+ \| (works|planned) \|$")
CHAPTERS = {
    "2": "chapter2_training",
    "3": "chapter3_release_patterns",
    "4": "chapter4_serving_patterns",
    "5": "chapter5_operations",
    "6": "chapter6_operation_management",
}


def pattern_map() -> dict[str, str]:
    """Pattern path → status, from the README's table."""
    rows: dict[str, str] = {}
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if match := ROW.match(line):
            chapter, linked, link, plain, status = match.groups()
            name = linked or plain
            path = f"{CHAPTERS[chapter]}/{name}"
            assert link in (None, path), f"{name} links to {link}, not {path}"
            rows[path] = status
    return rows


def test_the_map_lists_all_27_patterns_of_the_book() -> None:
    assert len(pattern_map()) == 27


def test_every_pattern_directory_is_in_the_map_as_works() -> None:
    built = {directory.relative_to(REPO_ROOT).as_posix() for directory in pattern_directories()}
    works = {path for path, status in pattern_map().items() if status == "works"}
    assert built == works


def test_every_working_pattern_has_tests_and_a_readme() -> None:
    for path, status in pattern_map().items():
        if status == "works":
            assert any((REPO_ROOT / "tests" / path).glob("test_*.py")), f"{path} has no tests"
            assert (REPO_ROOT / path / "README.md").exists(), f"{path} has no README"
