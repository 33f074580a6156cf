"""Incremental refresh: per-image score inputs (ccvec.score_input) and integer node ids (ccvec.image_node).

Revision ID: 0020_incremental_refresh
Revises: 0018_error_codes
"""

from ccvec.migrate import run_sql_file

revision = "0020_incremental_refresh"
down_revision = "0018_error_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0020_incremental_refresh.up.sql")


def downgrade() -> None:
    run_sql_file("0020_incremental_refresh.down.sql")
