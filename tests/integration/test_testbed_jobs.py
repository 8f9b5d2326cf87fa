"""The test bed runs Jobs for real: their pods run to completion on the fake
kubelet, the real job controller judges them, and pods marked to run locally run
their command as a real process, here against a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from testbed.postgres import PostgresServer

MIGRATIONS = Path(__file__).parent.parent / "fixtures" / "sample_migrations"


def alembic(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["alembic", "-c", str(MIGRATIONS / "alembic.ini"), *args],
        env=dict(os.environ, DATABASE_URL=dsn),
        capture_output=True,
        text=True,
        check=True,
    )


def test_the_sample_migrations_upgrade_and_downgrade_a_real_postgres(
    postgres: PostgresServer, postgres_dsn: str
) -> None:
    import psycopg

    alembic(postgres_dsn, "upgrade", "head")
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("select to_regclass('memory_store')").fetchone() == ("memory_store",)
    alembic(postgres_dsn, "downgrade", "0041")
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("select version_num from alembic_version").fetchone() == ("0041",)
        assert conn.execute("select to_regclass('memory_store')").fetchone() == (None,)
