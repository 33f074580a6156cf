"""Hash partitions on identifier for image_feature, image_embedding and knn_edge; HNSW per partition.

Revision ID: 0023_partitions
Revises: 0025_validation_sql
"""

from ccvec.migrate import run_sql_file

revision = "0023_partitions"
down_revision = "0025_validation_sql"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0023_partitions.up.sql")


def downgrade() -> None:
    run_sql_file("0023_partitions.down.sql")
