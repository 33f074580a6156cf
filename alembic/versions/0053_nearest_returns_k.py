"""ccvec.nearest gives k rows when k is above hnsw.ef_search (an iterative index scan).

Revision ID: 0053_nearest_returns_k
Revises: 0052_hostile_arguments
"""

from ccvec.migrate import run_sql_file

revision = "0053_nearest_returns_k"
down_revision = "0052_hostile_arguments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0053_nearest_returns_k.up.sql")


def downgrade() -> None:
    run_sql_file("0053_nearest_returns_k.down.sql")
