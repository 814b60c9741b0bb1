"""Module enablement: configuration requests, Proveedores Plus verification, decisions."""
