"""Results reference their file; files record their re-drives (docs/seams.md, "Database schema").

- ``extraction_results`` (``bucket``, ``object_name``) references ``files``
  (``bucket``, ``object_name``) with ``ON DELETE CASCADE``: deleting a file
  deletes its results in the same statement, and a result for an object no
  file owns (deleted while it was being extracted) cannot be written. Results
  without a file that exist already (the delete-while-extracting race before
  this revision) are deleted first, or the constraint could not be added.
- ``files.redrive_count`` / ``files.last_redriven_at``: how many times the
  reconciler (``extractor-reconcile``) republished the file's notification and
  when it last did (NULL: never).

Revision ID: 0003_results_reference_files
Revises: 0002_file_thumbnails
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_results_reference_files"
down_revision = "0002_file_thumbnails"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("files", sa.Column("redrive_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("files", sa.Column("last_redriven_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(op.f("ck_files_redrive_count_non_negative"), "files", "redrive_count >= 0")
    # Orphans of the delete-while-extracting race would block the constraint.
    op.execute(
        "DELETE FROM extraction_results r WHERE NOT EXISTS "
        "(SELECT 1 FROM files f WHERE f.bucket = r.bucket AND f.object_name = r.object_name)"
    )
    # References the unique index uq_files_bucket_object_name (PostgreSQL accepts a
    # non-partial unique index as the referenced key).
    op.create_foreign_key(
        op.f("fk_extraction_results_bucket_files"), "extraction_results", "files",
        ["bucket", "object_name"], ["bucket", "object_name"], ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_extraction_results_bucket_files"), "extraction_results", type_="foreignkey")
    op.drop_constraint(op.f("ck_files_redrive_count_non_negative"), "files", type_="check")
    op.drop_column("files", "last_redriven_at")
    op.drop_column("files", "redrive_count")
