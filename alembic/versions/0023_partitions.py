"""Hash partitions on identifier for image_feature, image_embedding and knn_edge; HNSW per partition.

Revision ID: 0023_partitions
Revises: 0018_error_codes
"""

from ccvec.migrate import run_sql_file

revision = "0023_partitions"
down_revision = "0018_error_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0023_partitions.up.sql")


def downgrade() -> None:
    run_sql_file("0023_partitions.down.sql")
