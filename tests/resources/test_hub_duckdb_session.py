"""The DuckDB hub's session (one open of the file for many statements) and its memory limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from resources.hub import HubError, TableSpec
from resources.hub.duckdb import MEMORY_LIMIT_SETTING, ROW_GROUP_ROWS, DuckDBHub

RAW_DOCUMENTS = TableSpec(
    "raw.documents",
    (("id", "text"), ("version", "bigint"), ("document", "json")),
    ("id",),
    version_column="version",
    zstd_columns=("document",),
)
TRY_OPEN = "import duckdb, sys\ntry:\n    duckdb.connect(sys.argv[1]).close()\nexcept duckdb.Error:\n    sys.exit(3)"


def other_process_opens(path: Path) -> bool:
    """Whether a second process can open the file (DuckDB lets one process hold it)."""
    return subprocess.run([sys.executable, "-c", TRY_OPEN, str(path)], check=False).returncode == 0


def memory_limit(hub: DuckDBHub) -> str:
    with hub.connect() as con:
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_a_session_holds_the_file_until_the_outermost_one_ends(tmp_path: Path):
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    hub.ensure_schemas()
    assert other_process_opens(hub.path)  # between statements the file is free
    with hub.session():
        with hub.session(), hub.connect() as con:
            con.execute("CREATE TABLE core.t AS SELECT 1 AS x")
        assert not other_process_opens(hub.path)  # still held by the outer session
        with hub.connect() as con:
            assert con.execute("SELECT x FROM core.t").fetchone() == (1,)
    assert other_process_opens(hub.path)


def test_connections_in_a_session_are_separate(tmp_path: Path):
    """Each connection has its own transaction and temp tables, as outside a session."""
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    with hub.session(), hub.connect() as first, hub.connect() as second:
        first.execute("CREATE TEMP TABLE mine AS SELECT 1 AS x")
        assert second.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'mine'").fetchone() == (0,)


def test_the_memory_limit_defaults_and_follows_its_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    monkeypatch.delenv(MEMORY_LIMIT_SETTING, raising=False)
    assert memory_limit(hub) == "244.1 MiB"  # 256MB: DuckDB counts MB in 1000s and shows MiB
    monkeypatch.setenv(MEMORY_LIMIT_SETTING, "1GB")
    assert memory_limit(hub) == "953.6 MiB"


def test_a_bad_memory_limit_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(MEMORY_LIMIT_SETTING, "lots")
    with pytest.raises(HubError, match=f"{MEMORY_LIMIT_SETTING}='lots' is not a DuckDB memory limit"):
        memory_limit(DuckDBHub(str(tmp_path / "hub.duckdb")))


def test_a_whole_table_replace_fits_in_the_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A `replace` merge of a table far larger than the limit, over its previous contents, commits."""
    monkeypatch.setenv(MEMORY_LIMIT_SETTING, "64MB")
    spec = TableSpec(
        "serving.v1_large",
        (("sku", "text"), ("location_id", "text"), ("available_quantity", "bigint")),
        ("sku", "location_id"),
        merge="replace",
    )
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    rows = 400_000
    for version in (1, 2):
        table = pa.table(
            {
                "sku": [f"SKU-{n:07d}" for n in range(rows)],
                "location_id": [f"warehouse-{n % 7}" for n in range(rows)],
                "available_quantity": pa.array([version] * rows, pa.int64()),
            }
        )
        with hub.load("large") as load:
            load.stage(spec).append(table)
        assert load.results[spec.name].rows_changed == rows
    with hub.connect() as con:
        assert con.execute("SELECT count(*), min(available_quantity) FROM serving.v1_large").fetchone() == (rows, 2)


def test_an_upsert_changing_every_row_fits_in_the_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A new version of every row of a table far larger than the limit commits, every row changed once."""
    monkeypatch.setenv(MEMORY_LIMIT_SETTING, "64MB")
    spec = TableSpec(
        "raw.large", (("id", "text"), ("version", "bigint"), ("document", "json")), ("id",), version_column="version"
    )
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    rows, document = 400_000, '{"name": "%s"}' % ("x" * 200)
    for version in (1, 2):
        table = pa.table(
            {
                "id": [f"id-{n:08d}" for n in range(rows)],
                "version": pa.array([version] * rows, pa.int64()),
                "document": [document] * rows,
            }
        )
        with hub.load("large") as load:
            load.stage(spec).append(table)
        assert load.results[spec.name].rows_changed == rows
    with hub.connect() as con:
        assert con.execute(
            "SELECT count(*), min(version), max(_batch_id) = min(_batch_id) FROM raw.large"
        ).fetchone() == (
            rows,
            2,
            True,
        )


def test_raw_and_core_tables_keep_their_key_without_an_index_and_documents_in_zstd(tmp_path: Path):
    raw = RAW_DOCUMENTS
    core = TableSpec("core.documents", raw.columns, ("id",), version_column="version")
    served = TableSpec("serving.documents", raw.columns, ("id",), version_column="version")
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    rows = pa.table(
        {
            "id": ["a", "b", "a", "b"],
            "version": pa.array([1, 1, 3, 2], pa.int64()),
            "document": ['{"text": "%s"}' % ("x" * 200)] * 4,
        }
    )
    for batch in (rows.slice(0, 2), rows.slice(2)):  # the second load updates both ids
        with hub.load("documents") as load:
            for spec in (raw, core, served):
                load.stage(spec).append(batch)
    with hub.connect() as con:
        for schema in ("raw", "core", "serving"):
            stored = con.execute(f"SELECT id, version FROM {schema}.documents ORDER BY id").fetchall()
            assert stored == [("a", 3), ("b", 2)], schema
        keyed = con.execute(
            "SELECT schema_name FROM duckdb_constraints()"
            " WHERE table_name = 'documents' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
        not_null = con.execute(
            "SELECT schema_name FROM duckdb_constraints() WHERE table_name = 'documents'"
            " AND constraint_type = 'NOT NULL' AND constraint_column_names = ['id'] ORDER BY schema_name"
        ).fetchall()
        con.execute("CHECKPOINT")
        storage = con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('raw.documents') WHERE column_name = 'document'"
            " AND segment_type = 'JSON'"
        ).fetchall()
    assert keyed == [("serving",)]
    assert not_null == [("core",), ("raw",), ("serving",)]  # keys are never null, indexed or not
    assert storage == [("ZSTD",)]


def test_a_load_of_several_row_groups_is_written_to_the_file_once_not_through_the_wal(tmp_path: Path):
    """Rows beyond a row group are written compressed into the file as they commit; the WAL gets next to
    nothing, so no checkpoint writes them again (in DuckDB's default row groups of 122,880 rows, all
    50,000 product documents of a full sync went through the WAL, then the checkpoint)."""
    spec = RAW_DOCUMENTS
    rows = 3 * ROW_GROUP_ROWS
    documents = pa.table(
        {
            "id": [f"doc-{n:06d}" for n in range(rows)],
            "version": pa.array([1] * rows, pa.int64()),
            "document": [f'{{"text": "{"x" * 500}", "n": {n}}}' for n in range(rows)],
        }
    )
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    wal = tmp_path / "hub.duckdb.wal"
    with hub.session():  # the file stays open, so nothing checkpoints it on close
        with hub.load("documents") as load:
            load.stage(spec).append(documents)
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        with hub.connect() as con:
            stored, groups = con.execute(
                "SELECT (SELECT count(*) FROM raw.documents),"
                " (SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('raw.documents'))"
            ).fetchone()
    assert stored == rows
    assert groups == 3
    assert wal_bytes < documents.nbytes / 100  # 16 MB of documents; the WAL holds the catalog changes


@pytest.mark.parametrize("rows", ["values", "values and nulls", "no rows"])
def test_read_frame_gives_the_frame_duckdbs_own_conversion_gives(tmp_path: Path, rows: str):
    """`read_frame` goes through Arrow (faster for text) but keeps `.df()`'s column types and values."""
    hub = DuckDBHub(str(tmp_path / "hub.duckdb"))
    with hub.connect() as con:
        con.execute(
            """CREATE TABLE kinds (t VARCHAR, j JSON, b BIGINT, i INTEGER, d DOUBLE, flag BOOLEAN,
                changed_at TIMESTAMPTZ, amount DECIMAL(10, 2), day DATE)"""
        )
        if rows != "no rows":
            con.execute("""INSERT INTO kinds VALUES ('x', '{"a": 1}', 1, 2, 1.5, true, '2026-01-01 00:00:00+00',
                1.25, '2026-01-02')""")
        if rows == "values and nulls":
            con.execute("INSERT INTO kinds VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
    for sql in ("SELECT * FROM kinds", "SELECT sum(b) AS total, count(*) AS n, max(day) AS last_day FROM kinds"):
        with hub.connect() as con:
            expected = con.execute(sql).df()
        frame = hub.read_frame(sql)
        assert frame.dtypes.to_dict() == expected.dtypes.to_dict(), sql
        assert frame.astype(object).fillna("null").equals(expected.astype(object).fillna("null")), sql
