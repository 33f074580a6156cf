"""Neighbourhood popularity summed in double precision, so its result does not depend on row order.

Revision ID: 0044_neighbourhood_sums
Revises: 0043_refresh_concurrently
"""

from ccvec.migrate import run_sql_file

revision = "0044_neighbourhood_sums"
down_revision = "0043_refresh_concurrently"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0044_neighbourhood_sums.up.sql")


def downgrade() -> None:
    run_sql_file("0044_neighbourhood_sums.down.sql")
