"""Data Docs that load nothing from the internet: real GX 1.24 sites, rewritten by quality/data_docs.py."""

import base64
import hashlib
import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import great_expectations
import pandas as pd
import pytest
from great_expectations import expectations as gxe

from quality.data_docs import GX_IMAGES, VENDOR_DIR, VENDORED, external_loads, make_offline
from quality.validation import DOCS_SITE, DatasetSuite, build_data_docs_index, run_suite

GX_TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
LOCAL_LOAD = re.compile(r'<(?:script|link|img)\b[^>]*\s(?:src|href)="([^"#:]+)"', re.IGNORECASE)

amounts_suite = DatasetSuite(
    name="amounts_suite",
    table="core.amounts",
    key_columns=("id",),
    expectations=lambda refs: [
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
    ],
)


def amounts(*values: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"a{i}" for i in range(len(values))], "amount": list(values)})


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Path]:
    """A real Data Docs site: a passing and a failing validation, then the full index rebuild."""
    with pytest.MonkeyPatch.context() as env:
        quality = tmp_path_factory.mktemp("quality")
        env.setenv("QUALITY_DIR", str(quality))
        run_suite(amounts_suite, amounts(1, 2), run_name="run-1")
        run_suite(amounts_suite, amounts(1, -2), run_name="run-2")
        build_data_docs_index()
        yield quality / "gx" / "docs"


def loaded_files(page: Path) -> list[Path]:
    return [(page.parent / url).resolve() for url in LOCAL_LOAD.findall(page.read_text())]


def test_gx_builds_pages_that_load_nothing_from_the_internet(site: Path):
    pages = sorted(site.rglob("*.html"))
    kinds = {p.relative_to(site).parts[0] for p in pages}
    assert kinds == {"index.html", "expectations", "validations"}
    assert len(list((site / "validations").rglob("*.html"))) == 2
    for path in [*pages, *(site / "static" / "styles").glob("*.css")]:
        assert external_loads(path.read_text()) == [], path
    # Every page loads the vendored files by a path relative to its own depth, and they are all there.
    for page in pages:
        loads = loaded_files(page)
        vendored = {p.name for p in loads if (site / VENDOR_DIR).resolve() in p.parents}
        assert vendored >= {"jquery.min.js", "bootstrap.min.js", "bootstrap.min.css", "vega.min.js", "all.min.css"}
        assert (site / "static" / "images" / "logo-long.png").resolve() in loads, page
        assert all(p.is_file() for p in loads if p.name != "favicon.ico"), page  # GX's own favicon path is off
    # Links are not loads: GX's links to its website stay.
    assert 'href="https://greatexpectations.io"' in (site / "index.html").read_text()


def test_the_font_awesome_fonts_are_vendored_with_their_css(site: Path):
    css = site / VENDOR_DIR / "@fortawesome/fontawesome-free/css/all.min.css"
    fonts = set(re.findall(r"url\(\.\./webfonts/([^)]+)\)", css.read_text()))
    assert fonts and all((css.parent.parent / "webfonts" / f).is_file() for f in fonts)


def test_vendored_files_are_the_bytes_gx_pins_by_integrity_hash(site: Path):
    """GX's templates carry SRI hashes for popper.js and Bootstrap: the npm copies must match them."""
    template = (GX_TEMPLATES / "js_script_imports.j2").read_text()
    pinned = re.findall(r'src="([^"]+)" integrity="sha384-([^"]+)"', template)
    assert len(pinned) == 2
    for url, digest in pinned:
        vendored = (site / VENDOR_DIR / VENDORED[url]).read_bytes()
        assert base64.b64encode(hashlib.sha384(vendored).digest()).decode() == digest, url


def test_every_cdn_file_in_gx_templates_is_vendored():
    """A GX upgrade that adds a CDN file fails here rather than in a reader's browser."""
    found = {url for t in GX_TEMPLATES.glob("*.j2") for url in external_loads(t.read_text())}
    assert found and found <= set(VENDORED), found - set(VENDORED)
    assert (GX_TEMPLATES / "top_navbar.j2").read_text().count(GX_IMAGES) == 1  # the logo, served locally


def test_rewriting_again_changes_nothing(site: Path):
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert make_offline(site) == []
    (site / VENDOR_DIR / ".offline").unlink()  # a full pass over every page
    assert make_offline(site) == []
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file() and p.name != ".offline"} == {
        p: b for p, b in before.items() if p.name != ".offline"
    }


def test_a_new_validation_rewrites_only_what_gx_wrote(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    site = tmp_path / "gx" / "docs"
    first = run_suite(amounts_suite, amounts(1), run_name="run-a")
    assert external_loads((site / "index.html").read_text()) == []
    index_before = (site / "index.html").read_bytes()
    second = run_suite(amounts_suite, amounts(-1), run_name="run-b")
    page = tmp_path / second.data_docs_path
    assert external_loads(page.read_text()) == []
    assert all(p.is_file() for p in loaded_files(page) if "vendor" in p.parts)
    assert (site / "index.html").read_bytes() == index_before  # GX left the index alone; so did the rewrite
    assert first.data_docs_path != second.data_docs_path


def test_without_npm_install_pages_stay_as_gx_wrote_them_and_one_warning_names_the_fix(tmp_path, caplog):
    site = tmp_path / "docs"
    site.mkdir()
    gx_markup = (GX_TEMPLATES / "js_script_imports.j2").read_text()
    (site / "index.html").write_text(gx_markup)
    missing = tmp_path / "no_node_modules"
    with caplog.at_level(logging.WARNING, logger="quality.data_docs"):
        assert make_offline(site, node_modules=missing) == []
        assert make_offline(site, node_modules=missing) == []
    assert (site / "index.html").read_text() == gx_markup
    assert not (site / VENDOR_DIR).exists()
    [warning] = [r.getMessage() for r in caplog.records]
    assert "make install" in warning and str(missing) in warning
    # With the npm install, the same page is rewritten.
    assert make_offline(site) == [site / "index.html"]
    assert external_loads((site / "index.html").read_text()) == []


GENERATED = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|\?d=[0-9T.]+Z")


def test_the_page_a_check_renders_is_the_page_gx_renders(tmp_path, monkeypatch):
    """Checks render their page with templates compiled once per process; GX's site build gives the same page."""
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    run_suite(amounts_suite, amounts(1), run_name="run-a")  # builds the index with GX's own site build
    page = tmp_path / run_suite(amounts_suite, amounts(1, -2), run_name="run-b").data_docs_path
    ours = page.read_text()
    context = great_expectations.get_context(mode="file", project_root_dir=str(tmp_path))
    [identifier] = [k for k in context.validation_results_store.list_keys() if k.run_id.run_name == "run-b"]
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[identifier], build_index=False)
    make_offline(tmp_path / "gx" / "docs")
    assert GENERATED.sub("", page.read_text()) == GENERATED.sub("", ours)  # element ids and times aside


def test_the_index_rebuild_renders_missing_pages_and_leaves_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    kept = tmp_path / run_suite(amounts_suite, amounts(1), run_name="run-a").data_docs_path
    lost = tmp_path / run_suite(amounts_suite, amounts(-1), run_name="run-b").data_docs_path
    lost.unlink()  # as if the check had stopped between storing its result and rendering the page
    kept_at = kept.stat().st_mtime_ns
    index = build_data_docs_index().read_text()
    assert lost.is_file() and external_loads(lost.read_text()) == []
    assert kept.stat().st_mtime_ns == kept_at
    assert "run-a" in index and "run-b" in index
    assert (tmp_path / "gx" / "docs" / "expectations" / "amounts_suite.html").is_file()


def test_a_changed_suite_is_saved_again_before_it_validates(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    assert run_suite(amounts_suite, amounts(5), run_name="run-a").success
    stricter = replace(
        amounts_suite, expectations=lambda refs: [gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=10)]
    )
    assert not run_suite(stricter, amounts(5), run_name="run-b").success
    context = great_expectations.get_context(mode="file", project_root_dir=str(tmp_path))
    [stored] = context.suites.get("amounts_suite").expectations
    assert stored.min_value == 10


def test_a_suite_saved_differently_elsewhere_is_saved_again(tmp_path, monkeypatch):
    """Another process may save the same suite with other expectations (older rules, other references)."""
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    run_suite(amounts_suite, amounts(5), run_name="run-a")
    elsewhere = great_expectations.get_context(mode="file", project_root_dir=str(tmp_path))
    other = [gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=10)]
    elsewhere.suites.add_or_update(great_expectations.ExpectationSuite(name="amounts_suite", expectations=other))
    result = run_suite(amounts_suite, amounts(5), run_name="run-b")
    assert result.success and (tmp_path / result.data_docs_path).is_file()
    again = great_expectations.get_context(mode="file", project_root_dir=str(tmp_path))
    assert len(again.suites.get("amounts_suite").expectations) == 2


def test_a_project_removed_while_the_process_runs_is_created_again(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    run_suite(amounts_suite, amounts(1), run_name="run-a")
    shutil.rmtree(tmp_path / "gx")
    result = run_suite(amounts_suite, amounts(1), run_name="run-b")
    assert (tmp_path / result.data_docs_path).is_file()
    assert (tmp_path / "gx" / "docs" / "index.html").is_file()


def test_the_index_rebuild_keeps_the_newest_validations_of_each_suite(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    other_suite = replace(amounts_suite, name="other_amounts_suite")
    pages = {name: tmp_path / run_suite(amounts_suite, amounts(1), run_name=name).data_docs_path for name in "abcd"}
    other = tmp_path / run_suite(other_suite, amounts(1), run_name="e").data_docs_path
    index = build_data_docs_index(keep=2).read_text()
    assert [name for name, page in pages.items() if page.is_file()] == ["c", "d"]
    assert other.is_file()  # each suite keeps its own newest
    context = great_expectations.get_context(mode="file", project_root_dir=str(tmp_path))
    stored = sorted(k.run_id.run_name for k in context.validation_results_store.list_keys())
    assert stored == ["c", "d", "e"]
    assert "run_name=b" not in index and "/b/" not in index and "/c/" in index
    validations = tmp_path / "gx" / "uncommitted" / "validations" / "amounts_suite"
    assert sorted(p.name for p in validations.iterdir()) == ["c", "d"]  # no empty folders left behind


def test_data_docs_keep_what_quality_docs_keep_says(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_DIR", str(tmp_path))
    first, last = (tmp_path / run_suite(amounts_suite, amounts(1), run_name=n).data_docs_path for n in ("a", "b"))
    monkeypatch.setenv("QUALITY_DOCS_KEEP", "1")
    build_data_docs_index()
    assert not first.exists() and last.is_file()
    for bad in ("0", "ten", "-3"):
        monkeypatch.setenv("QUALITY_DOCS_KEEP", bad)
        with pytest.raises(ValueError, match=f"QUALITY_DOCS_KEEP='{bad}': expected a whole number"):
            build_data_docs_index()
