"""Client companies (the buyers), their contacts and the state of the timbrado module."""
