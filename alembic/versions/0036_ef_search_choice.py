"""The exact neighbours of a sample within a reach, for choosing the graph build's ef_search.

Revision ID: 0036_ef_search_choice
Revises: 0035_visualrank_io
"""

from ccvec.migrate import run_sql_file

revision = "0036_ef_search_choice"
down_revision = "0035_visualrank_io"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0036_ef_search_choice.up.sql")


def downgrade() -> None:
    run_sql_file("0036_ef_search_choice.down.sql")
