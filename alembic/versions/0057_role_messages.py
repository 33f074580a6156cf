"""Access errors quote the role name; grant_access refuses a NULL level (it granted reader).

Revision ID: 0057_role_messages
Revises: 0056_probe_count_null
"""

from ccvec.migrate import run_sql_file

revision = "0057_role_messages"
down_revision = "0056_probe_count_null"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0057_role_messages.up.sql")


def downgrade() -> None:
    run_sql_file("0057_role_messages.down.sql")
