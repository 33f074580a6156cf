"""ccvec.folder_images reads a partial index of the rows loaded from files, not the whole catalog.

Revision ID: 0070_folder_images_index
Revises: 0069_report_gone
"""

from ccvec.migrate import run_sql_file

revision = "0070_folder_images_index"
down_revision = "0069_report_gone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0070_folder_images_index.up.sql")


def downgrade() -> None:
    run_sql_file("0070_folder_images_index.down.sql")
