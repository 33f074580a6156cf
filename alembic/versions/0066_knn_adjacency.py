"""VisualRank's input stored once per graph (ccvec.knn_adjacency), valid while knn_edge is unchanged.

Revision ID: 0066_knn_adjacency
Revises: 0065_settled_changes
"""

from ccvec.migrate import run_sql_file

revision = "0066_knn_adjacency"
down_revision = "0065_settled_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0066_knn_adjacency.up.sql")


def downgrade() -> None:
    run_sql_file("0066_knn_adjacency.down.sql")
