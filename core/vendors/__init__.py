"""Vendors: onboarding rules (Datos del CFDI)."""
