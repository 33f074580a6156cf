"""Near-duplicates: multi-index Hamming search, duplicate groups, provider classes.

Revision ID: 0003_neardup
Revises: 0002_loader
"""

from ccvec.migrate import run_sql_file

revision = "0003_neardup"
down_revision = "0002_loader"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0003_neardup.up.sql")


def downgrade() -> None:
    run_sql_file("0003_neardup.down.sql")
