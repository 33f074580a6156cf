"""ccvec.duplicate_listing(): every member of every near-duplicate group, with its location and title.

Revision ID: 0028_duplicate_listing
Revises: 0027_small_fixes
"""

from ccvec.migrate import run_sql_file

revision = "0028_duplicate_listing"
down_revision = "0027_small_fixes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0028_duplicate_listing.up.sql")


def downgrade() -> None:
    run_sql_file("0028_duplicate_listing.down.sql")
