"""Duplicate groups of the first release count as ungrouped: the next `ccvec run` regroups them.

Revision ID: 0062_first_release_groups
Revises: 0061_job_locks
"""

from ccvec.migrate import run_sql_file

revision = "0062_first_release_groups"
down_revision = "0061_job_locks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0062_first_release_groups.up.sql")


def downgrade() -> None:
    run_sql_file("0062_first_release_groups.down.sql")
