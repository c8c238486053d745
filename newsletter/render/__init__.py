"""Issue -> e-mail: Jinja -> MJML -> mjml-python -> premailer, a text part, a .eml preview, per audience variant."""

from .build import BuiltIssue, BuiltVariant, RenderedIssue, build_issue, load_built, render_issue, write_built
from .email import AD_LABEL, final_subject
from .merge import MergeTemplate
from .variants import PRIMARY, VariantPlan, plan_variants

__all__ = [
    "AD_LABEL", "PRIMARY", "BuiltIssue", "BuiltVariant", "MergeTemplate", "RenderedIssue", "VariantPlan",
    "build_issue", "final_subject", "load_built", "plan_variants", "render_issue", "write_built",
]
