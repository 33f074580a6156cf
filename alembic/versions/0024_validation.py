"""Validation once, in SQL: create_experiment checks its shares; dead first-round grouping functions dropped.

Revision ID: 0024_validation
Revises: 0020_incremental_refresh
"""

from ccvec.migrate import run_sql_file

revision = "0024_validation"
down_revision = "0020_incremental_refresh"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0024_validation.up.sql")


def downgrade() -> None:
    run_sql_file("0024_validation.down.sql")
