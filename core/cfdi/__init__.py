"""CFDI engine for REPs (CFDI 4.0 tipo P + Pagos 2.0): pure, no database, no network."""
