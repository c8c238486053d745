"""dangol — a monthly customer webzine pipeline: content -> render -> site, lists, send, track, report."""

__version__ = "0.1.0"
