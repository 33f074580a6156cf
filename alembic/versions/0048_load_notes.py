"""ccvec errors shows failures before notes, and by default the newest run with a failure.

Revision ID: 0048_load_notes
Revises: 0047_popularity_metrics
"""

from ccvec.migrate import run_sql_file

revision = "0048_load_notes"
down_revision = "0047_popularity_metrics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0048_load_notes.up.sql")


def downgrade() -> None:
    run_sql_file("0048_load_notes.down.sql")
