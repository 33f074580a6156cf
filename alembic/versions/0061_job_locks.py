"""Job locks: commands that must not run twice at once on one database wait for each other, saying so.

Revision ID: 0061_job_locks
Revises: 0059_graph_resume
"""

from ccvec.migrate import run_sql_file

revision = "0061_job_locks"
down_revision = "0059_graph_resume"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0061_job_locks.up.sql")


def downgrade() -> None:
    run_sql_file("0061_job_locks.down.sql")
