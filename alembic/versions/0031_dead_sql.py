"""Drop the dead ccvec.duplicate_edges; ccvec.phash_match counts bits with ccvec.hamming.

Revision ID: 0031_dead_sql
Revises: 0030_cluster_run_check
"""

from ccvec.migrate import run_sql_file

revision = "0031_dead_sql"
down_revision = "0030_cluster_run_check"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0031_dead_sql.up.sql")


def downgrade() -> None:
    run_sql_file("0031_dead_sql.down.sql")
