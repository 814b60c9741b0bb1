"""The service contract and privacy notice: versioned documents, e.firma signature, verification."""
