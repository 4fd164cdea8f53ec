"""The Alembic migrations against a real PostgreSQL: they build exactly the models' schema, go down and up again, and the CLI works."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.exc import IntegrityError

from pipeline_core import migrate
from pipeline_core.models import Base

pytestmark = pytest.mark.slow


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config("postgresql+psycopg://")).get_current_head()


def _fresh_db(postgres, name: str) -> str:
    return postgres.create_database(name, drop_existing=True)


def test_head_matches_the_models(database_url):
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == [], f"migrations and pipeline_core.models disagree: {diff}"
    assert {"files", "extraction_results", "alembic_version"} <= tables


def test_downgrade_to_base_and_upgrade_again(postgres):
    url = _fresh_db(postgres, "migrate_roundtrip")
    migrate.upgrade(url)
    migrate.run(url, "downgrade", "base")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    migrate.upgrade(url)
    migrate.upgrade(url)  # idempotent at head
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
    engine.dispose()


def test_constraints_reject_bad_rows(database_url):
    engine = create_engine(database_url, poolclass=pool.NullPool)
    fid = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE files, extraction_results, file_thumbnails"))
        conn.execute(
            text("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name) "
                 "VALUES (:id, 'a.gcode', 'text/x.gcode', 3, 'b', :obj)"),
            {"id": fid, "obj": f"files/{fid}/a.gcode"},
        )
    bad = [
        ("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name) "
         "VALUES (gen_random_uuid(), 'b.gcode', 'text/x.gcode', 3, 'b', :obj)", {"obj": f"files/{fid}/a.gcode"}),
        ("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name) "
         "VALUES (gen_random_uuid(), 'c.gcode', 'text/x.gcode', -1, 'b', 'x')", {}),
        ("INSERT INTO extraction_results (bucket, object_name, generation, status) VALUES ('b', 'o', 1, 'pending')", {}),
        ("INSERT INTO extraction_results (bucket, object_name, generation, status, attempts) "
         "VALUES ('b', 'o', 1, 'failed', 0)", {}),
        # thumbnails: an existing file, bounded size, a PNG of at most 256 KiB
        ("INSERT INTO file_thumbnails (file_id, generation, png, width, height) "
         "VALUES (gen_random_uuid(), 1, '\\x89504e470d0a1a0a'::bytea, 1, 1)", {}),
        ("INSERT INTO file_thumbnails (file_id, generation, png, width, height) "
         "VALUES (:id, 1, '\\x89504e470d0a1a0a'::bytea, 513, 1)", {"id": fid}),
        ("INSERT INTO file_thumbnails (file_id, generation, png, width, height) "
         "VALUES (:id, 1, decode(repeat('00', 262145), 'hex'), 1, 1)", {"id": fid}),
    ]
    for sql, params in bad:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(sql), params)
    with engine.begin() as conn:  # a thumbnail goes with its file
        conn.execute(text("INSERT INTO file_thumbnails (file_id, generation, png, width, height) "
                          "VALUES (:id, 1, '\\x89504e470d0a1a0a'::bytea, 1, 1)"), {"id": fid})
        conn.execute(text("DELETE FROM files WHERE id = :id"), {"id": fid})
        assert conn.execute(text("SELECT count(*) FROM file_thumbnails")).scalar_one() == 0
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE files, extraction_results, file_thumbnails"))
    engine.dispose()


def test_cli_upgrades_and_logs_json(postgres):
    url = _fresh_db(postgres, "migrate_cli")
    proc = subprocess.run([sys.executable, "-m", "pipeline_core.migrate", "--database-url", url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["message"] == "migration done" and lines[-1]["severity"] == "INFO"
    current = subprocess.run([sys.executable, "-m", "pipeline_core.migrate", "current", "--database-url", url],
                             capture_output=True, text=True, timeout=120)
    assert current.returncode == 0 and _head() in current.stdout


def test_cli_gives_up_on_unreachable_database_within_the_bound():
    from tools.devstack import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    proc = subprocess.run([sys.executable, "-m", "pipeline_core.migrate", "--database-url", url, "--wait-seconds", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["severity"] == "ERROR" and "not reachable" in last["message"]


def test_cli_without_database_url_exits_2(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert migrate.main([]) == 2


def test_concurrent_upgrades_apply_once(postgres):
    url = _fresh_db(postgres, "migrate_concurrent")
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline_core.migrate", "--database-url", url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err + out
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()


def test_grant_to_gives_another_login_role_row_access(postgres):
    """Cloud SQL shape: one IAM user per service; the extractor's must write results into tables it does not own."""
    import psycopg

    url = _fresh_db(postgres, "migrate_grants")
    role = "extractor-sa@test-project.iam"
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    as_role = f"postgresql://{role.replace('@', '%40')}@{postgres.host}:{postgres.port}/migrate_grants"

    migrate.upgrade(url)
    with psycopg.connect(as_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM extraction_results")

    proc = subprocess.run([sys.executable, "-m", "pipeline_core.migrate", "--database-url", url, "--grant-to", role],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with psycopg.connect(as_role) as conn:
        conn.execute("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name, generation) "
                     "VALUES (gen_random_uuid(), 'o.gcode', 'text/x.gcode', 1, 'b', 'o', 1)")
        conn.execute("INSERT INTO extraction_results (bucket, object_name, generation, status) VALUES ('b', 'o', 1, 'processed')")
        conn.execute("UPDATE extraction_results SET attempts = 2")
        assert conn.execute("SELECT count(*) FROM files").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE files")


def test_grant_to_an_unknown_role_fails_the_migration(postgres):
    url = _fresh_db(postgres, "migrate_grant_unknown")
    proc = subprocess.run([sys.executable, "-m", "pipeline_core.migrate", "--database-url", url,
                           "--grant-to", "nobody-here@x.iam"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:  # one transaction: the failed grant rolled the upgrade back too
        assert "files" not in inspect(conn).get_table_names()
    engine.dispose()


def test_sql_mode_prints_only_sql_on_stdout():
    proc = subprocess.run([sys.executable, "-m", "pipeline_core.migrate", "--sql"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "CREATE TABLE files" in proc.stdout and "CREATE TABLE extraction_results" in proc.stdout
    assert not any(line.startswith("{") for line in proc.stdout.splitlines())
    assert '"severity"' in proc.stderr


def test_results_reference_their_file_and_go_with_it(database_url):
    """A result needs its file's row, and deleting the file deletes its results (the delete-while-extracting race)."""
    engine = create_engine(database_url, poolclass=pool.NullPool)
    fid = uuid.uuid4()
    obj = f"files/{fid}/a.gcode"
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE files, extraction_results, file_thumbnails"))
        conn.execute(text("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name, generation) "
                          "VALUES (:id, 'a.gcode', 'text/x.gcode', 3, 'b', :obj, 7)"), {"id": fid, "obj": obj})
        conn.execute(text("INSERT INTO extraction_results (bucket, object_name, generation, status) "
                          "VALUES ('b', :obj, 7, 'processed'), ('b', :obj, 6, 'failed')"), {"obj": obj})
    with pytest.raises(IntegrityError, match="fk_extraction_results_bucket_files"), engine.begin() as conn:
        conn.execute(text("INSERT INTO extraction_results (bucket, object_name, generation, status) "
                          "VALUES ('b', 'files/nobody/x.gcode', 1, 'processed')"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM files WHERE id = :id"), {"id": fid})
        assert conn.execute(text("SELECT count(*) FROM extraction_results")).scalar_one() == 0
        assert conn.execute(text("SELECT redrive_count FROM files")).all() == []
    engine.dispose()


def test_upgrade_removes_results_without_a_file_then_adds_the_reference(postgres):
    url = _fresh_db(postgres, "migrate_orphans")
    migrate.run(url, "upgrade", "0001")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name, generation) "
                          "VALUES (gen_random_uuid(), 'a.gcode', 'text/x.gcode', 3, 'b', 'kept', 1)"))
        conn.execute(text("INSERT INTO extraction_results (bucket, object_name, generation, status) "
                          "VALUES ('b', 'kept', 1, 'processed'), ('b', 'orphan', 1, 'processed')"))
    migrate.upgrade(url)
    with engine.connect() as conn:
        left = conn.execute(text("SELECT object_name FROM extraction_results")).scalars().all()
        defaults = conn.execute(text("SELECT redrive_count, last_redriven_at FROM files")).all()
    engine.dispose()
    assert left == ["kept"]
    assert defaults == [(0, None)]
