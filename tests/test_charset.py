"""A page is read in the charset its bytes are in: a Windows-1252 page served as UTF-8 (common on older
government servers and in archived captures) reads "Résidence", not "R\ufffdsidence"; a UTF-8 page with a
stray byte stays UTF-8; and a history stored before this reading is compared like with like, never as "the
page changed"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from policywatch.monitor.config import parse_config
from policywatch.monitor.detection import extract
from policywatch.monitor.detection.extract import extract_html
from policywatch.monitor.pagework import FetchResult, PageWork
from policywatch.storage import open_database
from policywatch.storage import queries as q
from policywatch.storage.models import Change, Version

FR = (
    "<html lang='fr'><head><title>Frais</title>{head}</head><body><nav>Menu</nav><main><h1>Résidence "
    "permanente</h1><p>Les frais de traitement sont de 1 050 $ à compter du 30 avril 2024.</p>"
    "<p>Délai : 6 mois. Catégorie économique, Québec.</p></main></body></html>"
)
URL = "https://www.quebec.example.ca/fr/frais.html"


@pytest.mark.parametrize(
    "body, declared, charset, text",
    [
        (FR.format(head="").encode("cp1252"), "utf-8", "windows-1252", "Délai : 6 mois"),
        (FR.format(head="").encode("cp1252"), None, "windows-1252", "Québec"),  # nothing declared
        (FR.format(head="").encode("latin-1"), "iso-8859-1", None, "Résidence"),  # declared right
        (FR.format(head="").encode("utf-8"), "iso-8859-1", None, "économique"),  # UTF-8 labelled Latin-1
        # a UTF-8 page with one stray byte: still UTF-8, the byte replaced, every accent right
        (FR.format(head="").encode("utf-8").replace(b"Cat", b"\x92Cat"), "utf-8", None, "\ufffdCatégorie"),
    ],
)
def test_a_page_is_read_in_the_charset_its_bytes_are_in(body, declared, charset, text):
    ex = extract_html(body, URL, encoding=declared)
    assert text in ex.text and "R\ufffdsidence" not in ex.text, ex.text
    assert ex.meta.get("charset") == charset


def test_a_history_read_the_old_way_is_compared_like_with_like(tmp_path, monkeypatch):
    """Night 1 stored by the old reading (the declared UTF-8 taken at its word: every accent a U+FFFD);
    night 2, the same content with other furniture, read right: a new version, no change."""
    db_url = f"sqlite:///{tmp_path / 'h.db'}"
    cfg = parse_config(
        {
            "storage": {"url": db_url},
            "crawl": {"allowed_domains": ["www.quebec.example.ca"]},
            "watch": [{"url": URL}],
        }
    )
    db = open_database(db_url)
    real = extract.effective_encoding  # what extract_html reads the charset with

    def night(head: str, first: bool):
        with db.session() as s:
            run_id = q.open_run(s).id
        body = FR.format(head=head).encode("cp1252")
        return PageWork(db, cfg, run_id, first_run=first).process(
            FetchResult(
                url=URL, status=200, body=body, content_type="text/html; charset=utf-8", encoding="utf-8"
            )
        )

    try:
        monkeypatch.setattr(extract, "effective_encoding", lambda body, declared: declared or "utf-8")
        assert night("", True).result == "new"
        monkeypatch.setattr(extract, "effective_encoding", real)
        second = night("<script>var build = 2;</script>", False)
        assert (second.result, second.change_id) == ("unchanged", None), second
        with db.session() as s:
            texts = [v.text for v in s.scalars(select(Version).order_by(Version.id))]
            changes = s.scalars(select(Change.kind)).all()
        assert "R\ufffdsidence" in texts[0] and "Résidence" in texts[-1]  # stored right from now on
        assert changes == ["new_page"]
    finally:
        db.dispose()
