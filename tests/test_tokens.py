"""Signed tokens: what the tracking server trusts. Altered, forged or foreign tokens must read as None."""

import pytest

from newsletter.track.tokens import Signer

signer = Signer(b"secret-one")


@pytest.mark.parametrize("purpose", ["o", "u", "r"])
@pytest.mark.parametrize("delivery_id", [1, 255, 256, 123_456_789, 2**40])
def test_recipient_token_round_trip(purpose, delivery_id):
    token = signer.recipient(purpose, delivery_id)
    assert signer.read_recipient(purpose, token) == delivery_id


def test_a_token_for_one_purpose_does_not_work_for_another():
    open_token = signer.recipient("o", 42)
    assert signer.read_recipient("u", open_token) is None
    assert signer.read_recipient("u", "u" + open_token[1:]) is None


def test_every_single_character_change_is_rejected():
    token = signer.recipient("u", 9876)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        for other in alphabet[:8] + alphabet[-4:]:
            if other != ch:
                forged = token[:i] + other + token[i + 1:]
                assert signer.read_recipient("u", forged) is None, forged


def test_another_secret_does_not_verify():
    assert Signer(b"secret-two").read_recipient("o", signer.recipient("o", 7)) is None
    assert Signer(b"secret-two").read_link(signer.link("https://example.com/")) is None


def test_click_token_redirects_only_to_the_signed_url():
    url = "https://webzine.gaonfoods.example/2026-11/seongsu-roastery/?utm=1&x=한글"
    token = signer.recipient("r", 11) + "~" + signer.link(url)
    assert signer.read_click(token) == (11, url)
    other_link = signer.link("https://evil.example/")
    body, sig = other_link.split(".")
    good_body, good_sig = signer.link(url).split(".")
    # an attacker swapping the URL part while keeping the signature gets nothing
    assert signer.read_click(signer.recipient("r", 11) + "~" + body + "." + good_sig) is None
    # an open-pixel token cannot stand in for the click recipient
    assert signer.read_click(signer.recipient("o", 11) + "~" + signer.link(url)) is None


@pytest.mark.parametrize(
    "junk",
    ["", "~", "a~b", "r.AQ.x~y.z", "o..", "o.한글.서명", "r.가.나~다.라", "x" * 5000, "r.AQ.sig~é.x", "o.AQ.sig.extra"],
)
def test_malformed_tokens_read_as_none(junk):
    assert signer.read_recipient("o", junk) is None
    assert signer.read_click(junk) is None
    assert signer.read_link(junk) is None


def test_tokens_carry_no_address_and_stay_short():
    token = signer.recipient("u", 300_000)
    assert "@" not in token and len(token) < 30
