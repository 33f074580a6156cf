"""ccvec.nearest lists its answers by their exact similarity (the HNSW index only approximates the order).

Revision ID: 0026_nearest_order
Revises: 0023_partitions
"""

from ccvec.migrate import run_sql_file

revision = "0026_nearest_order"
down_revision = "0023_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0026_nearest_order.up.sql")


def downgrade() -> None:
    run_sql_file("0026_nearest_order.down.sql")
