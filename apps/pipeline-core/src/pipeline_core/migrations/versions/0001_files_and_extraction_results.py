"""files and extraction_results (docs/seams.md, "Database schema").

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("object_name", sa.Text(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_files_size_bytes_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index("uq_files_bucket_object_name", "files", ["bucket", "object_name"], unique=True)
    op.create_index("ix_files_created_at_id", "files", ["created_at", "id"], unique=False)
    op.create_table(
        "extraction_results",
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("object_name", sa.Text(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('processed', 'failed')", name=op.f("ck_extraction_results_status_known")),
        sa.CheckConstraint("attempts >= 1", name=op.f("ck_extraction_results_attempts_positive")),
        sa.PrimaryKeyConstraint("bucket", "object_name", "generation", name=op.f("pk_extraction_results")),
    )


def downgrade() -> None:
    op.drop_table("extraction_results")
    op.drop_index("ix_files_created_at_id", table_name="files")
    op.drop_index("uq_files_bucket_object_name", table_name="files")
    op.drop_table("files")
