"""file_thumbnails: a file's embedded preview as a bounded PNG (docs/seams.md).

Revision ID: 0002_file_thumbnails
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_file_thumbnails"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_thumbnails",
        sa.Column("file_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        # bounds as in pipeline_core.models (THUMBNAIL_MAX_SIDE_PX, THUMBNAIL_MAX_BYTES); literal here so
        # the migration stays what it was when the models change
        sa.CheckConstraint("width BETWEEN 1 AND 512", name=op.f("ck_file_thumbnails_width_bounded")),
        sa.CheckConstraint("height BETWEEN 1 AND 512", name=op.f("ck_file_thumbnails_height_bounded")),
        sa.CheckConstraint("octet_length(png) BETWEEN 8 AND 262144", name=op.f("ck_file_thumbnails_png_bounded")),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_file_thumbnails_file_id_files"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_file_thumbnails")),
    )


def downgrade() -> None:
    op.drop_table("file_thumbnails")
