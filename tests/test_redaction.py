"""Secrets are masked in every form and the tripwire finds any that slipped through."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from fixtures.redaction import MASK, Redactor, tripwire

SECRET = "p@ss/w0rd+$HOME"


def test_every_form_is_masked():
    redactor = Redactor([SECRET])
    forms = [SECRET, quote(SECRET, safe=""), json.dumps(SECRET)[1:-1],
             base64.b64encode(SECRET.encode()).decode()]
    for form in forms:
        assert redactor.scrub(f"before {form} after") == f"before {MASK} after"


def test_short_values_are_not_treated_as_secrets():
    assert Redactor(["abc"]).scrub("abc abc") == "abc abc"


def test_tripwire_reports_without_repeating_the_secret(tmp_path):
    clean, leaky = tmp_path / "clean.html", tmp_path / "leaky.xml"
    clean.write_text("nothing here")
    leaky.write_text(f"<p>{quote(SECRET, safe='')}</p>")
    findings = tripwire(Redactor([SECRET]), [clean, leaky])
    assert len(findings) == 1 and "leaky.xml" in findings[0]
    assert SECRET not in findings[0]


def test_tripwire_scans_assets_beside_the_report(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "extra.txt").write_text(SECRET)
    (tmp_path / "report.html").write_text("clean")
    assert tripwire(Redactor([SECRET]), [tmp_path / "report.html"])
