"""Alembic environment: the database comes from DATABASE_URL through src.configurations, the
same setting the processes read; alembic.ini never holds a URL.

On PostgreSQL the upgrade holds a transaction-level advisory lock: in k8s the api pods' init
containers and the seed Job may all run `alembic upgrade head` at once on an empty database,
and they take turns instead of racing to create the same tables.
"""

from __future__ import annotations

import logging
import sys

from alembic import context
from sqlalchemy import text

from src.common.logging import setup_logging
from src.configurations import Settings
from src.db.database import create_db_engine
from src.db.models import Base

target_metadata = Base.metadata
MIGRATION_LOCK_KEY = 3_4_0001  # any constant; the same in every process of this pattern


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
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
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
