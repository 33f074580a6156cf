"""Alembic environment: migrations run on ccvec's database, version table in schema ccvec."""

import sys

from alembic import context

from ccvec import config, db

url = context.config.attributes.get("database_url") or db.resolve_url()

engine = db.engine(url)
try:
    with engine.connect() as connection:
        # One migration run at a time (two `ccvec db upgrade` or `ccvec run` at once): the second
        # waits, saying so, then finds the schema current. Held by this session until it closes
        # (dispose below: a pooled connection would keep it, and the next migration would wait).
        if not connection.exec_driver_sql(
            "SELECT pg_try_advisory_lock(hashtext('ccvec migrations'))"
        ).scalar():
            print(
                "ccvec: waiting for another command migrating this database (`ccvec db upgrade` or "
                "`ccvec run`) to finish…",
                file=sys.stderr,
            )
            connection.exec_driver_sql("SELECT pg_advisory_lock(hashtext('ccvec migrations'))")
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {config.SCHEMA}")
        connection.commit()
        context.configure(
            connection=connection,
            version_table_schema=config.SCHEMA,
            transaction_per_migration=True,
            # ccvec.migrate.upgrade's progress: called after each migration is applied
            on_version_apply=context.config.attributes.get("on_version_apply") or (),
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
