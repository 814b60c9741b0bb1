"""Inbound support mail: what the inbox watcher hands to the core, and how the core records it."""
