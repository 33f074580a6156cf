"""Cluster names refreshed without recomputing medoids; one function for the names.

Revision ID: 0042_relabel
Revises: 0041_classes_in_one_pass
"""

from ccvec.migrate import run_sql_file

revision = "0042_relabel"
down_revision = "0041_classes_in_one_pass"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0042_relabel.up.sql")


def downgrade() -> None:
    run_sql_file("0042_relabel.down.sql")
