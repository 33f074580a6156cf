"""The SQL of clusters, novelty, inferred tags and folder export as functions called from Python.

Revision ID: 0014_cluster_functions
Revises: 0010_report
"""

from ccvec.migrate import run_sql_file

revision = "0014_cluster_functions"
down_revision = "0010_report"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0014_cluster_functions.up.sql")


def downgrade() -> None:
    run_sql_file("0014_cluster_functions.down.sql")
