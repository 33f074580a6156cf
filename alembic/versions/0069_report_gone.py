"""A folder's report leaves out its files gone since they were loaded (ccvec.report_gone).

Revision ID: 0069_report_gone
Revises: 0068_flat_phash
"""

from ccvec.migrate import run_sql_file

revision = "0069_report_gone"
down_revision = "0068_flat_phash"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0069_report_gone.up.sql")


def downgrade() -> None:
    run_sql_file("0069_report_gone.down.sql")
