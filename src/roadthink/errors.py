"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class RoadthinkError(Exception):
    """Bad input or a failed step, with a message that says what and where."""


class FatalModelError(RoadthinkError):
    """A model that no sample can pass (bad key, no access, no such model or URL): an
    evaluation stops at once instead of recording the same failure for every sample."""
