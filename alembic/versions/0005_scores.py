"""Scores: standardised popularity, VisualRank, web authority, image_score.

Revision ID: 0005_scores
Revises: 0004_graph
"""

from ccvec.migrate import run_sql_file

revision = "0005_scores"
down_revision = "0004_graph"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_scores.up.sql")


def downgrade() -> None:
    run_sql_file("0005_scores.down.sql")
