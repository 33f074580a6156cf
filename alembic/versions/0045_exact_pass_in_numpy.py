"""The graph build's exact pass reads the vectors in binary batches and multiplies them in numpy.

Revision ID: 0045_exact_pass_in_numpy
Revises: 0044_neighbourhood_sums
"""

from ccvec.migrate import run_sql_file

revision = "0045_exact_pass_in_numpy"
down_revision = "0044_neighbourhood_sums"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0045_exact_pass_in_numpy.up.sql")


def downgrade() -> None:
    run_sql_file("0045_exact_pass_in_numpy.down.sql")
