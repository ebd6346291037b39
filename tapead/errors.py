"""Exception types (docs/API.md, errors)."""


class TapeError(RuntimeError):
    """Misuse of a tape: nested or closed recording, mixed tapes, wrong thread, no outputs."""


class BranchChanged(TapeError):
    """A replay took a branch other than the one recorded (a branch guard flipped)."""
