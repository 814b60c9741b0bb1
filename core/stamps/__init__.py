"""Stamp plans and the append-only ledger that explains every change of balance."""
