"""--check-mx against a real DNS server on 127.0.0.1 (dnspython), one look-up per domain."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest
from _lists_helpers import csv_bytes, make_config, write

from newsletter import db
from newsletter.lists import clean_lists

ZONE = {
    "good.example.kr": {"MX": ["10 mx.good.example.kr."]},
    "aonly.example.kr": {"A": ["192.0.2.1"]},
    "nullmx.example.kr": {"MX": ["0 ."]},
    "empty.example.kr": {"TXT": ['"v=spf1 -all"']},
}
SILENT = {"timeout.example.kr"}


@pytest.fixture
def dns_server():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    queries: list[str] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(4096)
            except socket.timeout:
                continue
            q = dns.message.from_wire(data)
            question = q.question[0]
            name, rtype = question.name.to_text().rstrip("."), dns.rdatatype.to_text(question.rdtype)
            queries.append(f"{name}/{rtype}")
            if name in SILENT:
                continue
            r = dns.message.make_response(q)
            if name not in ZONE:
                r.set_rcode(dns.rcode.NXDOMAIN)
            elif rtype in ZONE[name]:
                r.answer.append(dns.rrset.from_text(question.name, 300, "IN", rtype, *ZONE[name][rtype]))
            sock.sendto(r.to_wire(), addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = sock.getsockname()[1]
    resolver.lifetime = 0.5
    yield resolver, queries
    stop.set()
    thread.join()
    sock.close()


def test_check_mx_rejects_domains_that_receive_no_mail(tmp_path, dns_server):
    resolver, queries = dns_server
    rows = [(f"{u}@{d}", "", "", "key" if u == "ceo" else "regular", "", "", "rep")
            for u, d in [("a", "good.example.kr"), ("b", "good.example.kr"), ("c", "aonly.example.kr"),
                         ("d", "nullmx.example.kr"), ("e", "gone.example.kr"), ("f", "empty.example.kr"),
                         ("g", "timeout.example.kr"), ("ceo", "gone.example.kr")]]
    cfg = make_config(tmp_path)
    write(tmp_path / "key-customers.csv", csv_bytes([("KC-9", "대표", "", "CEO@gone.example.kr", "rep-kim")],
                                                   header=("customer_id", "name", "company", "email", "owner")))
    result = clean_lists(cfg, subscribers=write(tmp_path / "s.csv", csv_bytes(rows)),
                         key_customers=tmp_path / "key-customers.csv", engine=db.get_engine(f"sqlite:///{tmp_path}/d.db"),
                         progress=False, check_mx=True, resolver=resolver)
    assert [r.email for r in result.audience] == [
        "a@good.example.kr", "b@good.example.kr", "c@aonly.example.kr", "g@timeout.example.kr"]
    assert {r.email: r.reason for r in result.rejected} == {
        "d@nullmx.example.kr": "invalid:no_mx", "e@gone.example.kr": "invalid:no_mx",
        "f@empty.example.kr": "invalid:no_mx", "ceo@gone.example.kr": "invalid:no_mx"}
    [a] = result.attention
    assert (a.email, a.reason, a.customer_id) == ("ceo@gone.example.kr", "invalid", "KC-9")
    assert any("DNS gave no answer for 1 domain(s) (timeout.example.kr)" in w for w in result.warnings)
    assert queries.count("good.example.kr/MX") == 1  # cached per domain
