"""Outgoing notifications: e-mails rendered from jinja2 templates into the outbox."""
