"""Orders for stamp packages: contact data and payment references."""
