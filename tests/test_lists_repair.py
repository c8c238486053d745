"""Domain-typo repair: the truth's typo table is repaired, the ambiguous ones refused, real domains left alone."""

from __future__ import annotations

import pytest
from _lists_helpers import truth

from newsletter.lists.normalize import canonicalize, resolve
from newsletter.lists.repair import KNOWN_DOMAINS, decide

TRUTH = truth()


@pytest.mark.parametrize("typo,fixed", sorted(TRUTH["typo_table"].items()))
def test_every_typo_in_the_truth_table_is_repaired(typo, fixed):
    decision = decide(typo)
    assert decision is not None and decision.to == fixed
    assert resolve(f"kim@{typo}") == (f"kim@{typo}", f"kim@{fixed}", f"kim@{typo}", None, "")


@pytest.mark.parametrize("typo,candidates", sorted(TRUTH["ambiguous_typos"].items()))
def test_ambiguous_typos_are_refused(typo, candidates):
    decision = decide(typo)
    assert decision is not None and decision.ambiguous and decision.to is None
    normalized, canonical, _repaired, reason, detail = resolve(f"Kim@{typo.upper()}")
    assert (normalized, canonical, reason) == (f"kim@{typo}", None, "ambiguous_typo")
    assert any(c in detail for c in candidates)


def test_no_other_domain_of_the_corpus_is_touched():
    domains = set()
    for row in TRUTH["rows"]:
        for value in (row.get("canonical"), row.get("normalized"), row.get("repaired_from")):
            if value and "@" in value:
                domains.add(value.rpartition("@")[2])
    touched = {d for d in domains if decide(d) is not None}
    assert touched == (set(TRUTH["typo_table"]) | set(TRUTH["ambiguous_typos"])) & domains


@pytest.mark.parametrize("domain", [
    *KNOWN_DOMAINS, "name.com", "mate.com", "date.com", "gate.com", "daum.com", "hanmail.com", "kakao.co.kr",
    "naver.net", "gmx.de", "nate.co.kr", "mail.co.kr", "hotmail.fr", "example.co.kr", "다온물류.com",
])
def test_legitimate_domains_are_not_repaired(domain):
    assert decide(domain) is None


def test_short_provider_labels_accept_only_a_swap():
    assert decide("ntae.com").to == "nate.com"
    assert decide("duam.net").to == "daum.net"
    assert decide("nqte.com") is None  # a substitution in a four-letter label may be a real domain


@pytest.mark.parametrize("raw,canonical", [
    ("  Kim@Naver.com ", "kim@naver.com"),
    ("ｌｅｅ．ｈｏｏｎａ＠ｋａｋａｏ．ｃｏｍ", "lee.hoona@kakao.com"),
    ('"오현성" <oh.hyunsung@naver.com>', "oh.hyunsung@naver.com"),
    ("유나현 ＜nahyun.yoo@naver.com＞", "nahyun.yoo@naver.com"),
    ("\u3000<SUNGJI.SON@GMAIL.COM>", "sungji.son@gmail.com"),
    ("Mailto:han.sophia@gmail.com", "han.sophia@gmail.com"),
    ("<mailto:a.b@daum.net>", "a.b@daum.net"),
    ("seoinye1970@다온물류.COM", "seoinye1970@다온물류.com"),
    ("kim+webzine@gmail.com", "kim+webzine@gmail.com"),
])
def test_canonical_form(raw, canonical):
    assert canonicalize(raw) == canonical
    assert resolve(raw)[1] == canonical


@pytest.mark.parametrize("raw,reason", [
    ("", "empty"), ("   ", "empty"), ("N/A ", "placeholder"), ("#N/A", "placeholder"), ("없음", "placeholder"),
    ("j unkyungyoon@gmail.com", "space_inside"), ("lim.sungsu.nate.com", "missing_at"),
    ("a@naver.com@naver.com", "two_at"), ("a@naver.com.", "trailing_dot"), ("a@hotmail", "no_tld"),
    ("a@daum.ne", "ambiguous_typo"), (".a@naver.com", "syntax"), ("a..b@naver.com", "syntax"),
    ("a@naver..com", "syntax"), ("a@example.c0m", "syntax"),
])
def test_invalid_reasons(raw, reason):
    assert resolve(raw)[3] == reason
