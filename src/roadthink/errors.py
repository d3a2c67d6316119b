"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class RoadthinkError(Exception):
    """Bad input or a failed step, with a message that says what and where."""
