"""What every part of the guest target raises, and the progress callback they report through."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]  # one line of progress: the batch prints it and appends it to progress.log


class GuestUnavailable(Exception):
    """Something the guest needs is missing here (QEMU, root, debootstrap); the message carries the fix."""


class GuestError(Exception):
    """The guest could not be baked or booted, or its results were lost: the tool or host broke."""
