"""Cluster labels and medoids, class predictions, calibrated inferred tags, novelty.

Revision ID: 0009_clusters
Revises: 0007_hardening
"""

from ccvec.migrate import run_sql_file

revision = "0009_clusters"
down_revision = "0007_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_clusters.up.sql")


def downgrade() -> None:
    run_sql_file("0009_clusters.down.sql")
