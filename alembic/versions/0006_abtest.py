"""A/B testing: experiments, cluster-mate substitution, served log, events, outcomes.

Revision ID: 0006_abtest
Revises: 0005_scores
"""

from ccvec.migrate import run_sql_file

revision = "0006_abtest"
down_revision = "0005_scores"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0006_abtest.up.sql")


def downgrade() -> None:
    run_sql_file("0006_abtest.down.sql")
