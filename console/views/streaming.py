class Echo:
    """A file-like object whose write() returns what it is given, so
    csv.writer can produce the lines of a streaming response."""

    def write(self, value: str) -> str:
        return value
