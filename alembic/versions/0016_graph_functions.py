"""The SQL that ccvec/graph.py, ccvec/cli/graph.py, ccvec/pipeline.py and ccvec/visualrank.py ran
as text, as functions in ccvec (issue 16).

Revision ID: 0016_graph_functions
Revises: 0015_neardup_score_functions
"""

from ccvec.migrate import run_sql_file

revision = "0016_graph_functions"
down_revision = "0015_neardup_score_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0016_graph_functions.up.sql")


def downgrade() -> None:
    run_sql_file("0016_graph_functions.down.sql")
