"""The one exception serving raises."""


class ServeError(RuntimeError):
    """Serving cannot go on; the message says what to do."""
