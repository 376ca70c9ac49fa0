"""`python -m src.seed` (Procfile.jobs `seed`): load SEED_FILE (data/items.json, written by
`make models`) into the items table, idempotently.

Each item has a unique `source_key`; a key already in the table is skipped, so a second seed
inserts nothing and two seeds at once insert every key once. Runs after `init_db`, never at
import or app start. Exit codes: 0 done, 2 the file is missing or malformed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from src.common.logging import setup_logging
from src.configurations import Settings
from src.db.database import Database
from src.db.models import SOURCE_KEY_LENGTH
from src.db.repository import seed_items

logger = logging.getLogger("seed")
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class SeedItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source_key: Annotated[str, Field(min_length=1, max_length=SOURCE_KEY_LENGTH)]
    values: list[Number]


class SeedFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[SeedItem]


class SeedFileError(RuntimeError):
    pass


def read_seed_file(path: Path) -> list[SeedItem]:
    try:
        return SeedFile.model_validate_json(path.read_bytes()).items
    except FileNotFoundError as error:
        raise SeedFileError(f"{path} is missing: run `make models` in the pattern") from error
    except ValidationError as error:
        raise SeedFileError(f"{path} is malformed: {error}") from error


def main() -> int:
    settings = Settings()
    setup_logging(settings.log_level)
    try:
        items = read_seed_file(settings.seed_file)
    except SeedFileError as error:
        logger.error("%s", error)
        return 2
    db = Database(settings.database_url, settings.db_timeout_s)
    try:
        with db.write_session() as session:
            inserted = seed_items(session, ((item.source_key, item.values) for item in items))
    finally:
        db.dispose()
    logger.info(
        "seed: %d rows in %s, %d inserted, %d already there",
        len(items),
        settings.seed_file.name,
        inserted,
        len(items) - inserted,
        extra={"rows": len(items), "inserted": inserted},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
