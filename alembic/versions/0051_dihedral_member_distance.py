"""A duplicate matched by pHash under a flip or rotation: the distance it matched at; the report says which.

Revision ID: 0051_dihedral_member_distance
Revises: 0050_catalog_restore
"""

from ccvec.migrate import run_sql_file

revision = "0051_dihedral_member_distance"
down_revision = "0050_catalog_restore"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0051_dihedral_member_distance.up.sql")


def downgrade() -> None:
    run_sql_file("0051_dihedral_member_distance.down.sql")
