"""Hostile arguments: VC errors for NULL or negative k, NULL chunk counts, bad widths, unknown roles.

Revision ID: 0052_hostile_arguments
Revises: 0051_dihedral_member_distance
"""

from ccvec.migrate import run_sql_file

revision = "0052_hostile_arguments"
down_revision = "0051_dihedral_member_distance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0052_hostile_arguments.up.sql")


def downgrade() -> None:
    run_sql_file("0052_hostile_arguments.down.sql")
