"""Secrets are masked in every form a reader or a parser would decode, pieces of them too, and
the tripwire finds any that slipped through (SAFETY.md P10, P20)."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus

import pytest

from fixtures.redaction import MASK, Redactor, tripwire

# The characters every encoding treats specially, and non-ASCII.
SECRET = "p@ss&<w0rd>\"'\\/+=%$HOME-é€"


def forms(secret: str) -> dict[str, str]:
    raw = secret.encode()
    return {
        "plain": secret,
        "html named": html.escape(secret),
        "html decimal": "".join(f"&#{ord(c)};" for c in secret),
        "html hex": "".join(f"&#x{ord(c):X};" for c in secret),
        "url": quote(secret, safe=""),
        "url lower case": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe="")),
        "url plus": quote_plus(secret, safe=""),
        "json": json.dumps(secret)[1:-1],
        "json ascii": json.dumps(secret, ensure_ascii=True)[1:-1],
        "python repr": repr(secret)[1:-1],
        "base64": base64.b64encode(raw).decode(),
        "base64 after 1 byte": base64.b64encode(b"x" + raw).decode(),
        "base64 after 2 bytes": base64.b64encode(b"xy" + raw).decode(),
        "base64url after 1 byte": base64.urlsafe_b64encode(b"x" + raw).decode(),
    }


def pieces(text: str, secret: str = SECRET) -> list[str]:
    """Every piece of 8 characters or more of the secret still readable in text."""
    return [secret[i:i + 8] for i in range(len(secret) - 7) if secret[i:i + 8] in text]


@pytest.mark.parametrize(("name", "form"), forms(SECRET).items(), ids=list(forms(SECRET)))
def test_every_form_is_masked(name: str, form: str):
    scrubbed = Redactor([SECRET]).scrub(f"before {form} after")
    assert MASK in scrubbed and pieces(scrubbed) == []
    for other in forms(SECRET).values():  # nothing of any form survives either
        assert not any(other[i:i + 11] in scrubbed for i in range(max(len(other) - 10, 1))), name


@pytest.mark.parametrize("cut", [8, 12, len(SECRET) - 8])
def test_a_piece_of_eight_or_more_is_masked_however_it_was_cut(cut: int):
    head, tail = SECRET[:cut], SECRET[-cut:]
    for text in (f"…{head}", f"{tail}…", html.escape(head), quote(tail, safe="")):
        assert pieces(Redactor([SECRET]).scrub(text)) == []
        assert list(Redactor([SECRET]).leaks(text))


def test_short_values_are_not_treated_as_secrets():
    assert Redactor(["abc"]).scrub("abc abc") == "abc abc"


def test_text_without_a_secret_is_left_alone():
    text = "a &amp; b %41 \\u0041 QUJD " * 100
    assert Redactor([SECRET]).scrub(text) == text


def test_tripwire_reports_without_repeating_the_secret(tmp_path):
    clean, leaky = tmp_path / "clean.html", tmp_path / "leaky.xml"
    clean.write_text("nothing here")
    leaky.write_text(f"<p>{html.escape(SECRET[3:15])}</p>")
    findings = tripwire(Redactor([SECRET]), [clean, leaky])
    assert len(findings) == 1 and "leaky.xml" in findings[0]
    assert pieces(findings[0]) == [] and "&amp;" not in findings[0]


def test_tripwire_scans_assets_beside_the_report(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "extra.txt").write_text(base64.b64encode(b"z" + SECRET.encode()).decode())
    (tmp_path / "report.html").write_text("clean")
    assert tripwire(Redactor([SECRET]), [tmp_path / "report.html"])
