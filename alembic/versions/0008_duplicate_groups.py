"""Duplicate groups: dihedral pHash probes, stored edges, average-linkage groups, canonical by cues.

Revision ID: 0008_duplicate_groups
Revises: 0013_comments
"""

from ccvec.migrate import run_sql_file

revision = "0008_duplicate_groups"
down_revision = "0013_comments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_duplicate_groups.up.sql")


def downgrade() -> None:
    run_sql_file("0008_duplicate_groups.down.sql")
