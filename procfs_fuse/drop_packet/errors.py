"""The one error a command or an activation fails with: an errno for the
file system (what the shell prints) and a reason for `last-error:`."""


class ErrnoError(Exception):
    def __init__(self, errno_value, message):
        super().__init__(message)
        self.errno = errno_value
