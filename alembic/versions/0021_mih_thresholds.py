"""Hamming search with one probe weight per chunk (generalised pigeonhole): one layout for r <= 8.

Revision ID: 0021_mih_thresholds
Revises: 0022_tags_novelty
"""

from ccvec.migrate import run_sql_file

revision = "0021_mih_thresholds"
down_revision = "0022_tags_novelty"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0021_mih_thresholds.up.sql")


def downgrade() -> None:
    run_sql_file("0021_mih_thresholds.down.sql")
