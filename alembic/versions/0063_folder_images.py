"""ccvec.folder_images: the images loaded before from under a folder, to tell files gone or changed since.

Revision ID: 0063_folder_images
Revises: 0062_first_release_groups
"""

from ccvec.migrate import run_sql_file

revision = "0063_folder_images"
down_revision = "0062_first_release_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0063_folder_images.up.sql")


def downgrade() -> None:
    run_sql_file("0063_folder_images.down.sql")
