"""The contract between an inbox source (IMAP, Maildir; in ``mail/``) and the core.

A source fetches raw messages and hands them, in mailbox order and in batches, to a
:class:`MailSink` together with their positions in the mailbox.  The sink records the messages,
their effects (a configuration request, an acknowledgement job, ...) **and** the new mailbox
position in one transaction, so a crash between fetching and recording loses nothing and a
re-fetch repeats nothing (deduplication by Message-ID, or a hash of the raw message).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MailboxPosition:
    """Where a message was found.  ``uid``/``uidvalidity`` are IMAP's; a Maildir uses 0/0."""

    mailbox: str
    uidvalidity: int
    uid: int


class IngestOutcome(enum.StrEnum):
    NEW_REQUEST = "new_request"  # opened a configuration request (and queued its acknowledgement)
    REPLY = "reply"  # attached to an existing request
    IGNORED = "ignored"  # recorded; matches nothing
    AUTOMATIC = "automatic"  # auto-reply, bounce or list mail: recorded, never acknowledged
    DUPLICATE = "duplicate"  # already recorded earlier (same Message-ID or raw hash)
    UNPROCESSABLE = "unprocessable"  # recorded as failed; the source moves it to quarantine
    FAILED = "failed"  # NOT recorded (an error while recording it): count a failure, do not go past it


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: IngestOutcome
    request_id: int | None = None
    ticket: str | None = None
    detail: str = ""

    @property
    def processed(self) -> bool:
        """True when the source may move the message to the processed folder."""
        return self.outcome not in (IngestOutcome.UNPROCESSABLE, IngestOutcome.FAILED)


class MailSink(Protocol):
    async def last_uid(self, mailbox: str, uidvalidity: int) -> int:
        """Highest UID recorded for this mailbox and UIDVALIDITY (0 when none: rescan)."""
        ...

    async def ingest_batch(self, items: Sequence[tuple[bytes, MailboxPosition]]) -> list[IngestResult]:
        """Record messages (in the order given) and the mailbox position in ONE transaction.

        ``results[i]`` answers ``items[i]``.  When recording a message raises, that message alone
        is rolled back and processing STOPS there: its result has outcome ``FAILED`` (``detail``
        says why), it is the last element of the list, and the messages after it get no result
        at all (``len(results) < len(items)``): they were not looked at and must be handed again
        later.  The position written covers only the messages before the failing one, so the
        source must record a failure for the ``FAILED`` message and not go past it in this pass.
        Raises only when the batch as a whole could not be committed (nothing was recorded).
        """
        ...

    async def ingest(self, raw: bytes, position: MailboxPosition) -> IngestResult:
        """Record one message and its position atomically (``ingest_batch`` of one message)."""
        ...

    async def record_failure(self, raw: bytes | None, position: MailboxPosition, error: str) -> int:
        """Count a failed attempt for this message; returns how many attempts have failed so far."""
        ...
