"""Validation once, in SQL: radius, dedup settings and --sim are checked by the functions that take them.

Revision ID: 0025_validation_sql
Revises: 0019_batched_search
"""

from ccvec.migrate import run_sql_file

revision = "0025_validation_sql"
down_revision = "0019_batched_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0025_validation_sql.up.sql")


def downgrade() -> None:
    run_sql_file("0025_validation_sql.down.sql")
