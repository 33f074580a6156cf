"""Hardening: dropped-index trace, access levels for reader / searcher / writer roles.

Revision ID: 0007_hardening
Revises: 0006_abtest
"""

from ccvec.migrate import run_sql_file

revision = "0007_hardening"
down_revision = "0006_abtest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_hardening.up.sql")


def downgrade() -> None:
    run_sql_file("0007_hardening.down.sql")
