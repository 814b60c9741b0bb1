"""Typed upload errors: a stable machine ``code`` plus a Spanish ``message`` for people."""

from __future__ import annotations

__all__ = ["ImageTooLargeError", "UploadError"]


class UploadError(Exception):
    """An upload refused or failed.

    Codes: ``too_large``, ``empty_file``, ``length_mismatch``, ``unsupported_type``, ``type_not_allowed``,
    ``corrupt_file``, ``image_too_large``, ``logo_too_large``, ``logo_dimensions``, ``upload_closed``,
    ``invalid_digest``, ``storage_error``. Suggested HTTP mapping: ``too_large`` and ``logo_too_large``
    -> 413; ``unsupported_type`` and ``type_not_allowed`` -> 415; ``storage_error`` -> 500; others -> 400.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"UploadError(code={self.code!r}, message={self.message!r})"


class ImageTooLargeError(UploadError):
    """An image whose header announces more pixels than allowed (refused before decoding)."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(
            "image_too_large",
            f"La imagen es demasiado grande ({width}×{height} píxeles); redúzcala e inténtelo de nuevo.",
        )
        self.width = width
        self.height = height
