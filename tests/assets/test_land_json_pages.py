"""`land_json_pages` (pages kept as JSON text, read by DuckDB) lands exactly what `land_pages` lands."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import orjson
import pytest

from assets.commerce import RAW_CHANNELS
from assets.landing import MAX_DOCUMENT_BYTES, land_json_pages, land_pages
from quality.quarantine import QUARANTINE
from resources.commerce import read_page_body
from resources.http import UnreadableBody
from resources.hub import HubResource

FETCHED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    text: str
    count: int
    fetched_at: datetime


def channel(number: int, **fields) -> dict:
    return {
        "id": f"ch-{number}",
        "version": 1,
        "key": f"c{number}",
        "name": {"en": "Lyon — dépôt ✓", "fr": "Lyon"},
        "geoLocation": {"coordinates": [4.85, 45.75]},
        "roles": ["InventorySupply"],
        "lastModifiedAt": f"2026-01-0{1 + number % 9}T10:00:00.123Z",
        **fields,
    }


def landed(hub: HubResource, pages: list[list], as_text: bool) -> tuple[list, list, datetime | None]:
    """Land `pages` into raw.commerce_channels: (raw rows, quarantine rows, watermark)."""
    context = dg.build_asset_context()
    if as_text:
        texts = [Page(orjson.dumps({"results": page}).decode(), len(page), FETCHED_AT) for page in pages]
        land_json_pages(context, hub, RAW_CHANNELS, texts, source="commerce/channels")
    else:
        land_pages(context, hub, RAW_CHANNELS, pages, source="commerce/channels")
    columns = "id, version, last_modified_at, document, _source AS source"
    raw = hub.read_frame(f"SELECT {columns} FROM {RAW_CHANNELS.name} ORDER BY id")
    rows = [
        (r.id, r.version, r.last_modified_at, orjson.loads(r.document), r.source) for r in raw.itertuples(index=False)
    ]
    quarantined = []
    if hub.backend.table_exists(QUARANTINE.name):
        frame = hub.read_frame("SELECT record_key, reason, record FROM quality.quarantine ORDER BY record_key")
        quarantined = [(r.record_key, r.reason, orjson.loads(r.record)) for r in frame.itertuples(index=False)]
    return rows, quarantined, hub.sync_state(RAW_CHANNELS.name).watermark


CASES = {
    "good records over several pages": [[channel(n) for n in range(7)], [channel(n) for n in range(7, 12)]],
    "a repeated id: the newest version lands once": [[channel(1, version=1), channel(1, version=3)], [channel(1)]],
    "no id": [[channel(1), {k: v for k, v in channel(2).items() if k != "id"}]],
    "an id that is no string, or empty": [[channel(1, id=12345), channel(2, id=""), channel(3)]],
    "a version that is no integer": [
        [channel(1, version="7"), channel(2, version=1.5), channel(3, version=True), channel(4, version=None)]
    ],
    "a version beyond 64 bits": [[channel(1, version=2**64 - 1), channel(2)]],
    "a modification time that is no time": [[channel(1, lastModifiedAt="yesterday-ish"), channel(2)]],
    "a modification time that is a number": [[channel(1, lastModifiedAt=1735725600), channel(2)]],
    "no modification time, or null": [
        [{k: v for k, v in channel(1).items() if k != "lastModifiedAt"}, channel(2, lastModifiedAt=None)]
    ],
    "a record that is no object": [[channel(1), 5, "text", [1, 2], None]],
    "a document above the size limit": [[channel(1, description="x" * MAX_DOCUMENT_BYTES), channel(2)]],
    "numbers, escapes and unicode kept": [[channel(1, price=12.5, big=2**62, tiny=1e-7, quote='say "hi"\n\t\\')]],
    "an empty page": [[]],
}


@pytest.mark.parametrize("pages", CASES.values(), ids=CASES.keys())
def test_the_same_raw_rows_quarantine_and_watermark_as_land_pages(tmp_path: Path, pages: list[list]):
    from_records = landed(HubResource(url=f"duckdb:///{tmp_path / 'records.duckdb'}"), pages, as_text=False)
    from_text = landed(HubResource(url=f"duckdb:///{tmp_path / 'text.duckdb'}"), pages, as_text=True)
    assert from_text == from_records
    landed_ids = {row[0] for row in from_text[0]}
    quarantined = len(from_text[1])
    source_ids = {r.get("id") if isinstance(r, dict) else None for page in pages for r in page}
    assert quarantined or landed_ids == source_ids - {None}  # every record lands or is quarantined


def test_each_landed_row_keeps_the_time_its_page_was_fetched(hub: HubResource):
    earlier = datetime(2026, 10, 1, tzinfo=UTC)
    pages = [Page(orjson.dumps({"results": [channel(1)]}).decode(), 1, earlier),
             Page(orjson.dumps({"results": [channel(2)]}).decode(), 1, FETCHED_AT)]  # fmt: skip
    land_json_pages(dg.build_asset_context(), hub, RAW_CHANNELS, pages, source="commerce/channels")
    frame = hub.read_frame(f"SELECT id, _extracted_at FROM {RAW_CHANNELS.name} ORDER BY id")
    assert [t.to_pydatetime() for t in frame["_extracted_at"]] == [earlier, FETCHED_AT]


def test_a_page_body_is_read_without_parsing_its_records_in_python():
    body = orjson.dumps({"limit": 2, "count": 2, "total": 9, "results": [channel(1), channel(2)]})
    page = read_page_body(body)
    assert (page.count, page.last_id, page.total) == (2, "ch-2", 9)
    assert page.records() == [channel(1), channel(2)]
    assert read_page_body(b'{"results": []}').last_id is None


def test_a_page_whose_last_id_or_total_is_of_the_wrong_type_reads_them_as_absent():
    page = read_page_body(b'{"total": "9", "results": [{"id": "a"}, {"id": 5}]}')
    assert (page.count, page.last_id, page.total) == (2, None, None)
    assert read_page_body(b'{"total": true, "results": ["a"]}').total is None


@pytest.mark.parametrize(
    "body",
    [b'{"results": [{"id": "a"}', b'{"results": {"id": "a"}}', b'{"count": 0}', b'{"results": ["caf\xe9"]}', b"[]"],
    ids=["cut short", "results no list", "no results", "not UTF-8", "no object"],
)
def test_a_body_that_is_no_page_is_unreadable(body: bytes):
    with pytest.raises(UnreadableBody):
        read_page_body(body)
