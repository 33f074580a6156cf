"""Class predictions read in one pass over the embeddings, not one pass per batch.

Revision ID: 0041_classes_in_one_pass
Revises: 0040_prune_runs
"""

from ccvec.migrate import run_sql_file

revision = "0041_classes_in_one_pass"
down_revision = "0040_prune_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0041_classes_in_one_pass.up.sql")


def downgrade() -> None:
    run_sql_file("0041_classes_in_one_pass.down.sql")
