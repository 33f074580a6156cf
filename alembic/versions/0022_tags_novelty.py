"""Inferred tags weighted by similarity^8; reference novelty relative to local density.

Revision ID: 0022_tags_novelty
Revises: 0024_validation
"""

from ccvec.migrate import run_sql_file

revision = "0022_tags_novelty"
down_revision = "0024_validation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0022_tags_novelty.up.sql")


def downgrade() -> None:
    run_sql_file("0022_tags_novelty.down.sql")
