"""The near-duplicate and score queries of ccvec/neardup.py, ccvec/scores.py and their CLI, as functions.

Revision ID: 0015_neardup_score_functions
Revises: 0014_cluster_functions
"""

from ccvec.migrate import run_sql_file

revision = "0015_neardup_score_functions"
down_revision = "0014_cluster_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0015_neardup_score_functions.up.sql")


def downgrade() -> None:
    run_sql_file("0015_neardup_score_functions.down.sql")
