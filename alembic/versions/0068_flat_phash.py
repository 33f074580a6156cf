"""A pHash without detail (another count than 32 bits set: a flat picture) matches nothing by pHash.

Revision ID: 0068_flat_phash
Revises: 0066_knn_adjacency
"""

from ccvec.migrate import run_sql_file

revision = "0068_flat_phash"
down_revision = "0066_knn_adjacency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0068_flat_phash.up.sql")


def downgrade() -> None:
    run_sql_file("0068_flat_phash.down.sql")
