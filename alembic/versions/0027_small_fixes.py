"""Small fixes: `ccvec errors --run N` for a missing run (VC002), an experiment report without a refresh
(ab_outcome reads image_cluster), one populated check (matview_populated dropped), and manifests that
update the catalog rows of images loaded before (ccvec.update_catalog).

Revision ID: 0027_small_fixes
Revises: 0026_nearest_order
"""

from ccvec.migrate import run_sql_file

revision = "0027_small_fixes"
down_revision = "0026_nearest_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0027_small_fixes.up.sql")


def downgrade() -> None:
    run_sql_file("0027_small_fixes.down.sql")
