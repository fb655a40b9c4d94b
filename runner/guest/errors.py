"""What every part of the guest target raises, and the progress callback they report through."""

from __future__ import annotations

from collections.abc import Callable

from runner.errors import CellProblem
from runner.model import Status

Progress = Callable[[str], None]  # one line of progress: the batch prints it and appends it to progress.log


class GuestUnavailable(CellProblem):
    """Something the guest needs is missing here (QEMU, root, debootstrap); the message carries the fix."""

    status = Status.UNAVAILABLE
    what = "SELinux guest"


class GuestError(CellProblem):
    """The guest could not be baked or booted, or its results were lost: the tool or host broke."""

    status = Status.ERROR
    what = "SELinux guest"
