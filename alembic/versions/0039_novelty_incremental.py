"""Reference-set novelty scored by what changed, with the kNN distances computed by the client.

Revision ID: 0039_novelty_incremental
Revises: 0038_settings_once
"""

from ccvec.migrate import run_sql_file

revision = "0039_novelty_incremental"
down_revision = "0038_settings_once"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0039_novelty_incremental.up.sql")


def downgrade() -> None:
    run_sql_file("0039_novelty_incremental.down.sql")
