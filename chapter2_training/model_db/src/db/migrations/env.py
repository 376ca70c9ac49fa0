"""Alembic environment: the database comes from DATABASE_URL through src.configurations, the
same setting the service reads; alembic.ini never holds a URL."""

from __future__ import annotations

import logging
import sys

from alembic import context

from src.common.logging import setup_logging
from src.configurations import Settings
from src.db.database import create_db_engine
from src.db.models import Base

target_metadata = Base.metadata


def run_migrations_offline(settings: Settings) -> None:
    """`alembic upgrade head --sql`: the SQL, for a DBA to read or run."""
    context.configure(
        url=settings.database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online(settings: Settings) -> None:
    engine = create_db_engine(settings.database_url, settings.db_timeout_s)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # SQLite cannot ALTER most things: later migrations rebuild tables in batches.
                render_as_batch=True,
                # All or nothing on both backends (SQLite too: the engine emits BEGIN itself).
                transactional_ddl=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def main() -> None:
    settings = Settings()
    # `--sql` prints the migration on stdout: the log goes to stderr then.
    setup_logging(settings.log_level, sys.stderr if context.is_offline_mode() else None)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up chatter
    if context.is_offline_mode():
        run_migrations_offline(settings)
    else:
        run_migrations_online(settings)


main()
