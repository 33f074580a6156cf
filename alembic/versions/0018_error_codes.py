"""canonical_order raises VC001 for an unknown preference, like every other ccvec RAISE.

Revision ID: 0018_error_codes
Revises: 0017_load_functions
"""

from ccvec.migrate import run_sql_file

revision = "0018_error_codes"
down_revision = "0017_load_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0018_error_codes.up.sql")


def downgrade() -> None:
    run_sql_file("0018_error_codes.down.sql")
