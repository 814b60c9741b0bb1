"""Stamping of payment complements (REP): invoices, payments, the stamp pipeline, cancellation."""
