"""Functions reading what `ccvec refresh` computes say to run it (VC005), not REFRESH MATERIALIZED VIEW.

Revision ID: 0054_refresh_first
Revises: 0053_nearest_returns_k
"""

from ccvec.migrate import run_sql_file

revision = "0054_refresh_first"
down_revision = "0053_nearest_returns_k"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0054_refresh_first.up.sql")


def downgrade() -> None:
    run_sql_file("0054_refresh_first.down.sql")
