"""The HTML report's data: one SQL function per section, limited to a scope of images.

Revision ID: 0010_report
Revises: 0008_duplicate_groups
"""

from ccvec.migrate import run_sql_file

revision = "0010_report"
down_revision = "0008_duplicate_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_report.up.sql")


def downgrade() -> None:
    run_sql_file("0010_report.down.sql")
