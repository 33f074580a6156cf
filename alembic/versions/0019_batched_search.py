"""One batched, parallel neighbour search for the kNN graph and near-duplicate edges.

Revision ID: 0019_batched_search
Revises: 0021_mih_thresholds
"""

from ccvec.migrate import run_sql_file

revision = "0019_batched_search"
down_revision = "0021_mih_thresholds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0019_batched_search.up.sql")


def downgrade() -> None:
    run_sql_file("0019_batched_search.down.sql")
