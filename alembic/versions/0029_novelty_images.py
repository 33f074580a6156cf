"""ccvec.novelty_reference_images(): a novelty reference set given as the images of a folder or manifest.

Revision ID: 0029_novelty_images
Revises: 0028_duplicate_listing
"""

from ccvec.migrate import run_sql_file

revision = "0029_novelty_images"
down_revision = "0028_duplicate_listing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0029_novelty_images.up.sql")


def downgrade() -> None:
    run_sql_file("0029_novelty_images.down.sql")
