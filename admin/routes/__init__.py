"""HTTP route modules; each exposes ``setup(app)``."""
