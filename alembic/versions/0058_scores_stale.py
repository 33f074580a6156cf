"""ccvec.scores_stale: a change to what the scores read leaves them stale until a refresh started after it.

Revision ID: 0058_scores_stale
Revises: 0057_role_messages
"""

from ccvec.migrate import run_sql_file

revision = "0058_scores_stale"
down_revision = "0057_role_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0058_scores_stale.up.sql")


def downgrade() -> None:
    run_sql_file("0058_scores_stale.down.sql")
