"""The runtime side's one error type: a sentence for the notebook, never a traceback."""


class ServeError(Exception):
    """Something the server could not do; the message says what and how to fix it."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
