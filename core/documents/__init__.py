"""Printed documents (PDF): the representación impresa of a stamped REP and shared helpers."""
