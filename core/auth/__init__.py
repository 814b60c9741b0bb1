"""API tokens and the principals they stand for."""
