"""`ccvec run` refreshes the scores when loaded images have none (ccvec.unscored_images).

Revision ID: 0055_unscored_images
Revises: 0054_refresh_first
"""

from ccvec.migrate import run_sql_file

revision = "0055_unscored_images"
down_revision = "0054_refresh_first"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0055_unscored_images.up.sql")


def downgrade() -> None:
    run_sql_file("0055_unscored_images.down.sql")
