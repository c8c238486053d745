"""Optional ``--check-mx``: reject addresses whose domain receives no mail, one DNS look-up per domain.

A domain is dead when DNS says it does not exist, or it has neither MX nor A/AAAA records, or it publishes a
null MX (RFC 7505). A look-up that times out or fails proves nothing: those addresses stay in (with a warning).
"""

from __future__ import annotations

import dns.exception
import dns.resolver

from .dedupe import Row


def domain_status(domain: str, resolver: dns.resolver.Resolver) -> bool | None:
    """True: receives mail; False: certainly not; None: could not tell."""
    name = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    try:
        answer = resolver.resolve(name, "MX")
        return not all(r.exchange.to_text() == "." for r in answer)
    except dns.resolver.NXDOMAIN:
        return False
    except dns.resolver.NoAnswer:
        pass
    except (dns.exception.DNSException, UnicodeError):
        return None
    for rtype in ("A", "AAAA"):
        try:
            resolver.resolve(name, rtype)
            return True
        except dns.resolver.NoAnswer:
            continue
        except dns.resolver.NXDOMAIN:
            return False
        except dns.exception.DNSException:
            return None
    return False


def apply_mx_check(rows: list[Row], warnings: list[str], resolver: dns.resolver.Resolver | None = None) -> None:
    """Mark rows whose domain receives no mail as invalid (``no_mx``), in place."""
    resolver = resolver or dns.resolver.Resolver()
    resolver.lifetime = min(resolver.lifetime, 5.0)
    cache: dict[str, bool | None] = {}
    unknown: set[str] = set()
    for row in rows:
        if row.canonical is None:
            continue
        domain = row.canonical.rpartition("@")[2]
        if domain not in cache:
            cache[domain] = domain_status(domain, resolver)
        ok = cache[domain]
        if ok is False:
            row.verdict, row.invalid_reason, row.detail = "invalid", "no_mx", f"{domain} receives no mail (DNS)"
            row.normalized, row.canonical = row.canonical, None
        elif ok is None:
            unknown.add(domain)
    if unknown:
        warnings.append(f"--check-mx: DNS gave no answer for {len(unknown)} domain(s) "
                        f"({', '.join(sorted(unknown)[:5])}{' …' if len(unknown) > 5 else ''}); kept")
