"""List hygiene: messy CRM/Excel lists in, the audience of a send out — and every key customer accounted for."""

from .guard import Attention
from .hygiene import HygieneResult, Recipient, Rejected, clean_lists, write_outputs

__all__ = ["clean_lists", "write_outputs", "Recipient", "Attention", "Rejected", "HygieneResult"]
