"""Sending: ledger, message, backends, runner; and the monthly schedule with its database lock."""
