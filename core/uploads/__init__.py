"""Uploads: content detection, streaming into content-addressed storage, logo checks, display names."""

from core.uploads.errors import ImageTooLargeError, UploadError
from core.uploads.logo import LOGO_MAX_BYTES, LOGO_MAX_SIDE, LOGO_TYPES, LogoInfo, check_logo
from core.uploads.names import safe_display_name
from core.uploads.sniff import ContentType, Sniffed, sniff_bytes, sniff_path, sniff_stream
from core.uploads.store import (
    DEFAULT_MAX_BYTES,
    PROOF_TYPES,
    ContentStore,
    StoredFile,
    StreamingUpload,
    format_megabytes,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "LOGO_MAX_BYTES",
    "LOGO_MAX_SIDE",
    "LOGO_TYPES",
    "PROOF_TYPES",
    "ContentStore",
    "ContentType",
    "ImageTooLargeError",
    "LogoInfo",
    "Sniffed",
    "StoredFile",
    "StreamingUpload",
    "UploadError",
    "check_logo",
    "format_megabytes",
    "safe_display_name",
    "sniff_bytes",
    "sniff_path",
    "sniff_stream",
]
