"""A refresh starts from input changes committed (input_changes_settled); graph prune marks nothing stale.

Revision ID: 0065_settled_changes
Revises: 0064_group_labels
"""

from ccvec.migrate import run_sql_file

revision = "0065_settled_changes"
down_revision = "0064_group_labels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0065_settled_changes.up.sql")


def downgrade() -> None:
    run_sql_file("0065_settled_changes.down.sql")
