"""SPEC 1.3 acceptance test 4 on SQLite and PostgreSQL, on a registry of its own (this module's
launch starts from an empty database, so the totals are exact)."""

from __future__ import annotations

from tests.chapter2_training.model_db.harness import API, Json, Registry


def test_120_projects_come_back_in_pages_of_50_50_20(registry: Registry) -> None:
    names = {f"page_project_{index:03d}" for index in range(120)}
    for name in sorted(names):
        registry.project(name)

    pages: list[list[Json]] = []
    links: list[str | None] = []
    for offset in (0, 50, 100):
        response = registry.client.get(
            f"{API}/projects/all", params={"limit": 50, "offset": offset}
        )
        assert response.status_code == 200
        assert response.headers["X-Total-Count"] == "120"
        pages.append(response.json())
        next_link = response.links.get("next")
        links.append(next_link["url"] if next_link else None)

    assert [len(page) for page in pages] == [50, 50, 20]
    returned = [item["project_name"] for page in pages for item in page]
    assert len(returned) == len(set(returned)) == 120  # no duplicates
    assert set(returned) == names  # no gaps
    assert links[0] is not None and "offset=50" in links[0] and "limit=50" in links[0]
    assert links[1] is not None and "offset=100" in links[1]
    assert links[2] is None  # nothing after the last page


def test_following_link_headers_visits_every_project_once(registry: Registry) -> None:
    seen: list[str] = []
    url: str | None = f"{registry.url}{API}/projects/all?limit=33"
    while url is not None:
        response = registry.client.get(url)
        seen.extend(item["project_id"] for item in response.json())
        link = response.links.get("next")
        url = link["url"] if link else None
    total = int(registry.client.get(f"{API}/projects/all?limit=1").headers["X-Total-Count"])
    assert len(seen) == len(set(seen)) == total


def test_offset_past_the_end_is_an_empty_page(registry: Registry) -> None:
    total = registry.client.get(f"{API}/projects/all?limit=1").headers["X-Total-Count"]
    response = registry.client.get(f"{API}/projects/all", params={"offset": 10_000})
    assert response.status_code == 200
    assert response.json() == []
    assert "Link" not in response.headers
    assert response.headers["X-Total-Count"] == total
