"""Audit log: who decided what, from which driver, with before/after state."""
