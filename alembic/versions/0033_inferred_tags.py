"""Inferred tags: untagged neighbours count against a tag in sparsely tagged collections; a rank per image.

Revision ID: 0033_inferred_tags
Revises: 0036_ef_search_choice
"""

from ccvec.migrate import run_sql_file

revision = "0033_inferred_tags"
down_revision = "0036_ef_search_choice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0033_inferred_tags.up.sql")


def downgrade() -> None:
    run_sql_file("0033_inferred_tags.down.sql")
