"""A/B tests against hostile input: NULLs in a results page, unknown levels, counts per experiment.

Revision ID: 0049_ab_hardening
Revises: 0048_load_notes
"""

from ccvec.migrate import run_sql_file

revision = "0049_ab_hardening"
down_revision = "0048_load_notes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0049_ab_hardening.up.sql")


def downgrade() -> None:
    run_sql_file("0049_ab_hardening.down.sql")
