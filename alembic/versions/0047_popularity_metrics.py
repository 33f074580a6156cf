"""A provider's popularity metric set from the command line; metrics nobody counts are reported.

Revision ID: 0047_popularity_metrics
Revises: 0046_report_catalog_sizes
"""

from ccvec.migrate import run_sql_file

revision = "0047_popularity_metrics"
down_revision = "0046_report_catalog_sizes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0047_popularity_metrics.up.sql")


def downgrade() -> None:
    run_sql_file("0047_popularity_metrics.down.sql")
