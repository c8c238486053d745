"""Shared fixtures: a fresh database on SQLite and on PostgreSQL, a secret, the example project."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
# Copies of ../shared/corpus and ../shared/specs live in tests/data so a clean clone runs anywhere.
CORPUS = Path(os.environ.get("DANGOL_CORPUS", ROOT / "tests" / "data" / "corpus"))
SPECS = Path(os.environ.get("DANGOL_SPECS", ROOT / "tests" / "data" / "specs"))
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_url() -> str:
    """A throwaway schema in the local PostgreSQL, so each test starts empty."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch):
    """A database URL, once SQLite and once PostgreSQL; also exported as DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
        return
    url, schema = _postgres_url()
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    from newsletter import db

    db.get_engine(url).dispose()
    db._engine_for.cache_clear()
    _drop_schema(schema)


@pytest.fixture
def sqlite_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-not-for-production")


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the repository's example project (config, content, templates, lists) in a temp folder."""
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("config.yaml",):
        shutil.copy(ROOT / name, dest / name)
    for name in ("content", "templates", "lists"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, dest / name)
    return dest
