"""Alembic environment: migrations run on ccvec's database, version table in schema ccvec."""

from alembic import context

from ccvec import config, db

url = context.config.attributes.get("database_url") or db.resolve_url()

with db.engine(url).connect() as connection:
    connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {config.SCHEMA}")
    connection.commit()
    context.configure(
        connection=connection,
        version_table_schema=config.SCHEMA,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
