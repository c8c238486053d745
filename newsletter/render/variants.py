"""Audience variants: one rendered email per distinct set of articles a tier may see.

An article with ``audience: [key, loyal]`` is shown only to those tiers. Tiers that see the same
articles share a variant, so an issue without restricted articles has exactly one (``all``). The
variant that reaches the most tiers (on a tie, the one that includes the lowest tier, i.e. what a
newcomer gets) is called ``all`` and is written at the top of ``build/<issue>/``; the others are named
after their tiers (``key-loyal``) and written to a subfolder of that name.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..content import TIERS, Article, Issue

PRIMARY = "all"


@dataclass(frozen=True)
class VariantPlan:
    name: str                      # "all", "key-loyal"
    tiers: tuple[str, ...]         # highest first
    articles: tuple[Article, ...]

    @property
    def folder(self) -> str:
        """Where the variant's files go, relative to build/<issue>/ ("" for the primary variant)."""
        return "" if self.name == PRIMARY else self.name


def visible_articles(issue: Issue, tier: str) -> tuple[Article, ...]:
    return tuple(a for a in issue.articles if a.audience is None or tier in a.audience)


def plan_variants(issue: Issue) -> list[VariantPlan]:
    """The variants of an issue, primary first, then in tier order."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for tier in TIERS:
        slugs = tuple(a.slug for a in visible_articles(issue, tier))
        groups.setdefault(slugs, []).append(tier)
    ranked = sorted(groups.values(), key=lambda tiers: (len(tiers), TIERS.index(tiers[-1])), reverse=True)
    plans = []
    for i, tiers in enumerate(ranked):
        name = PRIMARY if i == 0 else "-".join(tiers)
        plans.append(VariantPlan(name, tuple(tiers), visible_articles(issue, tiers[0])))
    return [plans[0]] + sorted(plans[1:], key=lambda p: TIERS.index(p.tiers[0]))


def tier_variant(plans: list[VariantPlan]) -> dict[str, str]:
    """Which variant each of the four tiers receives."""
    return {tier: plan.name for plan in plans for tier in plan.tiers}
