"""ccvec.require_cluster_run(): a --run naming a cluster run that does not exist is one line.

Revision ID: 0030_cluster_run_check
Revises: 0029_novelty_images
"""

from ccvec.migrate import run_sql_file

revision = "0030_cluster_run_check"
down_revision = "0029_novelty_images"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0030_cluster_run_check.up.sql")


def downgrade() -> None:
    run_sql_file("0030_cluster_run_check.down.sql")
