"""Semantic neighbours: HNSW per model, kNN graph, clusters, inferred tags and popularity.

Revision ID: 0004_graph
Revises: 0003_neardup
"""

from ccvec.migrate import run_sql_file

revision = "0004_graph"
down_revision = "0003_neardup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0004_graph.up.sql")


def downgrade() -> None:
    run_sql_file("0004_graph.down.sql")
