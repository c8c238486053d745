"""One exception type for problems the user can fix; the CLI prints it as one line, never a traceback."""


class UserError(Exception):
    """A problem in the user's input or setup, with where it is (file, row, field) in the message."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
