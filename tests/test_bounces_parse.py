"""Bounce classification: the corpus truth file by file, and the formats it does not cover."""

from __future__ import annotations

import json
import mailbox
import shutil
import textwrap

import pytest
from _lists_helpers import BOUNCES, bounce_truth
from typer.testing import CliRunner

from newsletter.bounces import classify, iter_messages, scan
from newsletter.cli import app

TRUTH = bounce_truth()


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_corpus_message_matches_truth(name):
    expected = TRUTH[name]
    [bounce] = classify((BOUNCES / name).read_bytes())
    assert (bounce.recipient, bounce.kind, bounce.status) == (expected["recipient"], expected["kind"], expected["status"])


def test_scan_json_over_the_folder(tmp_path):
    res = CliRunner().invoke(app, ["bounces", "scan", str(BOUNCES), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {d["file"].rsplit("/", 1)[-1]: (d["recipient"], d["kind"], d["status"]) for d in data} == {
        k: (v["recipient"], v["kind"], v["status"]) for k, v in TRUTH.items()}
    assert all(set(d) == {"file", "recipient", "kind", "status", "diagnostic"} for d in data)
    assert next(d for d in data if d["file"].endswith("p-008.eml"))["diagnostic"] == "552 5.2.2 Mailbox full"


def _dsn(recipients: str, extra_headers: str = "") -> bytes:
    head = textwrap.dedent("""\
        From: MAILER-DAEMON@mx.example.net
        To: return@mail.gaonfoods-letter.kr
        Subject: Delivery Status Notification
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status; boundary="B"

        --B
        Content-Type: text/plain

        Delivery report.

        --B
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.net

        """)
    return (extra_headers + head + recipients + "\n--B--\n").replace("\n", "\r\n").encode("utf-8")


def test_dsn_with_several_recipients_reads_each_block():
    raw = _dsn("Final-Recipient: rfc822; <A.Kim@Example.co.kr>\nAction: failed\nStatus: 5.1.1\n"
               "Diagnostic-Code: smtp; 550 5.1.1 unknown\n\n"
               "Final-Recipient: rfc822; b.lee@example.co.kr\nAction: delayed\nStatus: 4.2.2\n"
               "Diagnostic-Code: smtp; 452 4.2.2 over quota\n\n"
               "Final-Recipient: rfc822; c.park@example.co.kr\nAction: delivered\nStatus: 2.0.0\n\n"
               "Final-Recipient: utf-8; 김철수@가온.한국\nAction: failed\n")
    got = [(b.recipient, b.kind, b.status, b.diagnostic) for b in classify(raw)]
    assert got == [
        ("a.kim@example.co.kr", "permanent", "5.1.1", "550 5.1.1 unknown"),
        ("b.lee@example.co.kr", "temporary", "4.2.2", "452 4.2.2 over quota"),
        ("김철수@가온.한국", "permanent", None, ""),  # no Status: Action failed decides
    ]


def test_status_class_beats_action():
    raw = _dsn("Final-Recipient: rfc822; d@example.co.kr\nAction: failed\nStatus: 4.4.7\n")
    assert classify(raw)[0].kind == "temporary"


@pytest.mark.parametrize("headers,subject,body", [
    ("X-Autoreply: yes\n", "Re: 소식지", "감사합니다."),
    ("Precedence: auto_reply\n", "Re: letter", "Thanks."),
    ("", "[부재중] 김민수 과장 휴가", "11월 20일까지 부재중입니다."),
    ("", "Out of Office: away until Monday", "I am away."),
    ("Auto-Submitted: auto-replied\n", "Please verify your message", "Click to approve your message to x@y.kr"),
])
def test_auto_replies_and_challenges_are_not_bounces(headers, subject, body):
    from email.header import Header

    raw = (f"From: Someone <someone@example.co.kr>\nTo: letter@gaonfoods-letter.kr\n{headers}"
           f"Subject: {Header(subject, 'utf-8').encode()}\nContent-Type: text/plain; charset=utf-8\n"
           f"Content-Transfer-Encoding: 8bit\n\n{body}\n").encode("utf-8")
    [b] = classify(raw)
    assert (b.kind, b.recipient) == ("not_a_bounce", None)


def test_verp_recipient_is_used_when_the_notice_names_nobody():
    raw = ("From: postmaster@relay.example.net\nTo: bounces+kim.a=hanmail.net@mail.gaonfoods-letter.kr\n"
           "Subject: Undeliverable message\n\n421 4.4.2 connection dropped, will be retried\n").encode()
    [b] = classify(raw)
    assert (b.recipient, b.kind, b.status) == ("kim.a@hanmail.net", "temporary", "4.4.2")


def test_sources_read_folders_mbox_and_maildir(tmp_path):
    names = ["p-001.eml", "p-005.eml", "p-015.eml"]
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for name in names:
        box.add((BOUNCES / name).read_bytes())
    box.flush()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for name in names:
        maildir.add((BOUNCES / name).read_bytes())
    folder = tmp_path / "folder" / "sub"
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(BOUNCES / name, folder / name)
    expected = [(TRUTH[n]["recipient"], TRUTH[n]["kind"]) for n in names]
    for path in (tmp_path / "bounces.mbox", tmp_path / "Maildir", tmp_path / "folder"):
        got = [(r["recipient"], r["kind"]) for r in scan([path])]
        assert sorted(got, key=str) == sorted(expected, key=str), path
    labels = [m.label for m in iter_messages([tmp_path / "bounces.mbox"])]
    assert labels == [f"{tmp_path / 'bounces.mbox'}#{i}" for i in (1, 2, 3)]


def test_missing_path_is_one_clear_error(tmp_path):
    from newsletter.errors import UserError

    with pytest.raises(UserError, match="nothing.eml: no such file or folder"):
        scan([tmp_path / "nothing.eml"])
