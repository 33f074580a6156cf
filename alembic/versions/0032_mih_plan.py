"""Hamming search reads its per-radius probe plan (ccvec.mih_plan) instead of computing it per call.

Revision ID: 0032_mih_plan
Revises: 0031_dead_sql
"""

from ccvec.migrate import run_sql_file

revision = "0032_mih_plan"
down_revision = "0031_dead_sql"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0032_mih_plan.up.sql")


def downgrade() -> None:
    run_sql_file("0032_mih_plan.down.sql")
