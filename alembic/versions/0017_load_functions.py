"""Load runs and errors, models, A/B experiments and DDL helpers as SQL functions (issue 16).

Revision ID: 0017_load_functions
Revises: 0016_graph_functions
"""

from ccvec.migrate import run_sql_file

revision = "0017_load_functions"
down_revision = "0016_graph_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0017_load_functions.up.sql")


def downgrade() -> None:
    run_sql_file("0017_load_functions.down.sql")
