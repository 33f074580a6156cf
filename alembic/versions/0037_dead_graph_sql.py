"""Drop ccvec.knn_run_settings and ccvec.knn_run_images, unused since the build measures its own recall.

Revision ID: 0037_dead_graph_sql
Revises: 0034_novelty_spread
"""

from ccvec.migrate import run_sql_file

revision = "0037_dead_graph_sql"
down_revision = "0034_novelty_spread"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0037_dead_graph_sql.up.sql")


def downgrade() -> None:
    run_sql_file("0037_dead_graph_sql.down.sql")
