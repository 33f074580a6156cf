"""Loader: staging table and batch ingestion functions.

Revision ID: 0002_loader
Revises: 0001_foundation
"""

from ccvec.migrate import run_sql_file

revision = "0002_loader"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0002_loader.up.sql")


def downgrade() -> None:
    run_sql_file("0002_loader.down.sql")
