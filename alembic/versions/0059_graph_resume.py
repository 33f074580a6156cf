"""An interrupted graph build is resumed: runs claimed by an advisory lock, ccvec.resumable_knn_run.

Revision ID: 0059_graph_resume
Revises: 0058_scores_stale
"""

from ccvec.migrate import run_sql_file

revision = "0059_graph_resume"
down_revision = "0058_scores_stale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0059_graph_resume.up.sql")


def downgrade() -> None:
    run_sql_file("0059_graph_resume.down.sql")
