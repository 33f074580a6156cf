"""Inferred tags weighted towards the nearest neighbours (similarity^8), threshold recalibrated.

Revision ID: 0022_tag_weights
Revises: 0018_error_codes
"""

from ccvec.migrate import run_sql_file

revision = "0022_tag_weights"
down_revision = "0018_error_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0022_tag_weights.up.sql")


def downgrade() -> None:
    run_sql_file("0022_tag_weights.down.sql")
