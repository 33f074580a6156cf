"""COMMENT ON every function, view and table of schema ccvec; SQLSTATE class VC for ccvec's errors.

Revision ID: 0013_comments
Revises: 0009_clusters
"""

from ccvec.migrate import run_sql_file

revision = "0013_comments"
down_revision = "0009_clusters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0013_comments.up.sql")


def downgrade() -> None:
    run_sql_file("0013_comments.down.sql")
