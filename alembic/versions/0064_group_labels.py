"""Clusters no ImageNet class carries are named by the kind of thing most of them are (mammals, birds...).

Revision ID: 0064_group_labels
Revises: 0063_folder_images
"""

from ccvec.migrate import run_sql_file

revision = "0064_group_labels"
down_revision = "0063_folder_images"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0064_group_labels.up.sql")


def downgrade() -> None:
    run_sql_file("0064_group_labels.down.sql")
