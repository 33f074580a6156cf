"""Inferred tags get a rank: ties in score go to the tag carried by more images of the collection.

Revision ID: 0033_tag_rank
Revises: 0031_dead_sql
"""

from ccvec.migrate import run_sql_file

revision = "0033_tag_rank"
down_revision = "0031_dead_sql"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0033_tag_rank.up.sql")


def downgrade() -> None:
    run_sql_file("0033_tag_rank.down.sql")
