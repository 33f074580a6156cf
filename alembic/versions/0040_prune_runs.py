"""Old graph and cluster runs, and `ccvec graph prune` to delete them.

Revision ID: 0040_prune_runs
Revises: 0039_novelty_incremental
"""

from ccvec.migrate import run_sql_file

revision = "0040_prune_runs"
down_revision = "0039_novelty_incremental"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0040_prune_runs.up.sql")


def downgrade() -> None:
    run_sql_file("0040_prune_runs.down.sql")
