"""The stored adjacency read at one edge change value, and not stored outside READ COMMITTED.

Revision ID: 0067_knn_adjacency_once
Revises: 0066_knn_adjacency
"""

from ccvec.migrate import run_sql_file

revision = "0067_knn_adjacency_once"
down_revision = "0066_knn_adjacency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0067_knn_adjacency_once.up.sql")


def downgrade() -> None:
    run_sql_file("0067_knn_adjacency_once.down.sql")
