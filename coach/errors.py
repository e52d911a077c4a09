"""The project's exception types. Every message tells the user what to do next."""


class CoachError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""

    exit_code = 1


class ModelNotFound(CoachError):
    """A model name or path that does not exist."""

    exit_code = 2


class InvalidModelFile(CoachError):
    """A file that is not a loadable GGUF (truncated, wrong magic, unsupported)."""

    exit_code = 3


class InsufficientMemory(CoachError):
    """The model would not fit in the RAM that is free right now."""

    exit_code = 4


class InsufficientDisk(CoachError):
    """Not enough free disk for a download or a quantization."""

    exit_code = 5


class DownloadError(CoachError):
    """A pull that failed: no network, a server error, or a checksum mismatch."""

    exit_code = 6


class ConfigError(CoachError):
    """A malformed human-edited file (catalog, persona, scenario, rubric)."""

    exit_code = 7
