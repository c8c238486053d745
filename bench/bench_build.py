"""Bench: building the example issue (e-mail + site), warm, and filling merge fields per recipient.

Run by hand:  python bench/bench_build.py [--runs 10] [--recipients 200000]
Works on a temporary copy of the project (config, content, templates), so build/ is left alone.
Prints: warm wall time of a whole build (preflight + render + write + site), MJML compile, CSS
inlining, site generation, and the personalization rate (recipients/s; goal >= 50,000/s).
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mjml  # noqa: E402

from newsletter.check import preflight  # noqa: E402
from newsletter.config import load_config  # noqa: E402
from newsletter.content import list_issues, load_issue  # noqa: E402
from newsletter.render import MergeTemplate, write_built  # noqa: E402
from newsletter.render.email import inline_css  # noqa: E402
from newsletter.site import build_site  # noqa: E402
from newsletter.track.tokens import Signer  # noqa: E402


def timed(fn, runs: int) -> tuple[float, float]:
    """(median, min) seconds of fn() over runs, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def ms(pair: tuple[float, float]) -> str:
    return f"median {pair[0] * 1000:7.1f} ms   min {pair[1] * 1000:7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--recipients", type=int, default=200_000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copy(ROOT / "config.yaml", project / "config.yaml")
        for name in ("content", "templates"):
            shutil.copytree(ROOT / name, project / name)
        cfg = load_config(project / "config.yaml")
        issue_id = list_issues(cfg)[-1]

        def full_build():
            report = preflight(cfg, issue_id)
            assert not report.errors, [str(f) for f in report.errors]
            write_built(cfg, report.rendered)
            build_site(cfg, [load_issue(cfg, i) for i in list_issues(cfg)], cfg.path(cfg.paths.build) / "site")

        report = preflight(cfg, issue_id)
        variants = report.rendered.variants
        sources = [v.mjml_source for v in variants]
        compiled = [mjml.mjml2html(s) for s in sources]
        issues = [load_issue(cfg, i) for i in list_issues(cfg)]
        site_dir = cfg.path(cfg.paths.build) / "site"

        whole = timed(full_build, args.runs)
        compile_t = timed(lambda: [mjml.mjml2html(s) for s in sources], args.runs)
        inline_t = timed(lambda: [inline_css(c) for c in compiled], args.runs)
        site_t = timed(lambda: build_site(cfg, issues, site_dir), args.runs)
        check_t = timed(lambda: preflight(cfg, issue_id), args.runs)

        # Personalization: the send step rewrites links once per send, then fills each recipient.
        signer = Signer(b"bench-secret")
        tracking = cfg.tracking.base_url.rstrip("/")
        sendable = re.sub(r'href="(https?://[^"]+)"',
                          lambda m: f'href="{tracking}/c/%%r%%~{signer.link(html.unescape(m.group(1)))}"',
                          variants[0].html)
        n = args.recipients
        names = [f"고객{i}" for i in range(1000)]
        values = [(html.escape(names[i % 1000]), "가온상회", f"{tracking}/u/u.AQ.abc{i % 97}",
                   f"{tracking}/o/o.AQ.abc{i % 97}.gif", f"r.AQ.abc{i % 97}") for i in range(1000)]
        t = time.perf_counter()
        for i in range(n):
            name, company, unsub, pixel, r = values[i % 1000]
            out = (sendable.replace("%%name%%", name).replace("%%company%%", company)
                   .replace("%%unsubscribe_url%%", unsub).replace("%%open_url%%", pixel).replace("%%r%%", r))
        fill_rate = n / (time.perf_counter() - t)
        assert "%%" not in out
        merge = MergeTemplate(sendable)
        records = [dict(zip(("name", "company", "unsubscribe_url", "open_url", "r"), v)) for v in values]
        t = time.perf_counter()
        for i in range(n):
            joined = merge.fill(records[i % 1000])
        join_rate = n / (time.perf_counter() - t)
        assert joined == out   # same recipient, same message
        m = max(n // 10, 1)
        t = time.perf_counter()
        for i in range(m):   # the same, with the three signed recipient tokens computed per recipient
            out = (sendable.replace("%%name%%", "고객").replace("%%company%%", "가온상회")
                   .replace("%%unsubscribe_url%%", f"{tracking}/u/{signer.recipient('u', i + 1)}")
                   .replace("%%open_url%%", f"{tracking}/o/{signer.recipient('o', i + 1)}.gif")
                   .replace("%%r%%", signer.recipient("r", i + 1)))
        signed_rate = m / (time.perf_counter() - t)

    sizes = ", ".join(f"{v.plan.name} {len(v.html.encode()) / 1024:.1f} KB" for v in variants)
    links = sendable.count(f"{tracking}/c/")
    print(f"example issue {issue_id}: {len(variants)} variants ({sizes}); {len(issues)} issues on the site; "
          f"{args.runs} warm runs")
    print(f"  whole build (check + render + write + site) {ms(whole)}   (goal < 1000 ms)")
    print(f"  MJML compile (all variants)                 {ms(compile_t)}")
    print(f"  CSS inlining, premailer (all variants)      {ms(inline_t)}")
    print(f"  site generation                             {ms(site_t)}")
    print(f"  preflight (load + render + rules)           {ms(check_t)}")
    print(f"  personalization, str.replace x5, {links} tracked links: {fill_rate:,.0f} recipients/s (goal >= 50,000/s)")
    print(f"  ... with 3 signed tokens per recipient:              {signed_rate:,.0f} recipients/s")
    print(f"  personalization, MergeTemplate (split once, join):    {join_rate:,.0f} recipients/s")


if __name__ == "__main__":
    main()
