"""ccvec.mih_probe_count: a NULL weight probes nothing, as its comment says (it counted the whole chunk).

Revision ID: 0056_probe_count_null
Revises: 0055_unscored_images
"""

from ccvec.migrate import run_sql_file

revision = "0056_probe_count_null"
down_revision = "0055_unscored_images"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0056_probe_count_null.up.sql")


def downgrade() -> None:
    run_sql_file("0056_probe_count_null.down.sql")
