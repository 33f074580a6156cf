"""Settings read once per refresh, not per row; inferred tags aggregated before they are joined.

Revision ID: 0038_settings_once
Revises: 0037_dead_graph_sql
"""

from ccvec.migrate import run_sql_file

revision = "0038_settings_once"
down_revision = "0037_dead_graph_sql"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0038_settings_once.up.sql")


def downgrade() -> None:
    run_sql_file("0038_settings_once.down.sql")
