"""Novelty as a distance to a centre in units of each dimension's spread, within the collection and
against a reference set (members scored leave-one-out).

Revision ID: 0034_novelty_spread
Revises: 0033_inferred_tags
"""

from ccvec.migrate import run_sql_file

revision = "0034_novelty_spread"
down_revision = "0033_inferred_tags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0034_novelty_spread.up.sql")


def downgrade() -> None:
    run_sql_file("0034_novelty_spread.down.sql")
