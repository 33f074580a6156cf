"""Only the views that serve readers are refreshed CONCURRENTLY; setting refresh.concurrently.

Revision ID: 0043_refresh_concurrently
Revises: 0042_relabel
"""

from ccvec.migrate import run_sql_file

revision = "0043_refresh_concurrently"
down_revision = "0042_relabel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0043_refresh_concurrently.up.sql")


def downgrade() -> None:
    run_sql_file("0043_refresh_concurrently.down.sql")
