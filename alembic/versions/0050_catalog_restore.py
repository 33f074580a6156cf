"""A load writes again the catalog rows deleted since their images were embedded.

Revision ID: 0050_catalog_restore
Revises: 0049_ab_hardening
"""

from ccvec.migrate import run_sql_file

revision = "0050_catalog_restore"
down_revision = "0049_ab_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0050_catalog_restore.up.sql")


def downgrade() -> None:
    run_sql_file("0050_catalog_restore.down.sql")
