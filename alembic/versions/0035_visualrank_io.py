"""VisualRank input in block-range chunks (each under the 1 GB bytea limit); no per-row key check on output.

Revision ID: 0035_visualrank_io
Revises: 0032_mih_plan
"""

from ccvec.migrate import run_sql_file

revision = "0035_visualrank_io"
down_revision = "0032_mih_plan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0035_visualrank_io.up.sql")


def downgrade() -> None:
    run_sql_file("0035_visualrank_io.down.sql")
