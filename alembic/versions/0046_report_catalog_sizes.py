"""The report tells an image alone in its scope from a singleton: clusters carry their catalog size.

Revision ID: 0046_report_catalog_sizes
Revises: 0045_exact_pass_in_numpy
"""

from ccvec.migrate import run_sql_file

revision = "0046_report_catalog_sizes"
down_revision = "0045_exact_pass_in_numpy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0046_report_catalog_sizes.up.sql")


def downgrade() -> None:
    run_sql_file("0046_report_catalog_sizes.down.sql")
