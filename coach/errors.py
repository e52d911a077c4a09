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


class StorageError(CoachError):
    """The sessions database or the data folder cannot be used (corrupt, unwritable, a file)."""

    exit_code = 8


class SessionBusy(CoachError):
    """A session is open for writing in another window or process."""

    exit_code = 9


class ServerUnavailable(CoachError):
    """The model server is down, timed out, or dropped the connection: the turn was not stored and can be
    asked again (the session is saved up to the last answer)."""

    exit_code = 10


EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "done"),
    (1, "a step that could not be done: an unknown session, a file the coach will not delete, answer lines skipped"),
    (2, "a model name or path that does not exist (also: a command-line usage error)"),
    (3, "a file that is not a loadable GGUF: truncated, not GGUF, no tensors, a corrupt header, a crafted header "
        "(counts beyond the file or any real model, a layer or expert number llama.cpp would abort on)"),
    (4, "not enough free RAM for the model (refused before loading, with the GiB needed), or out of memory"),
    (5, "not enough disk for a download or a quantization"),
    (6, "a download failed: no network, a server error, a checksum mismatch"),
    (7, "an unusable input: rubric, answers, catalog, registry, a setting out of range, an output path, a busy "
        "port; a FIFO, a device or an oversized input, a piped answer past 20,000 characters, a rubric past its "
        "limits, no home folder without COACH_HOME, `--auth-header` beyond loopback without `--trusted-proxy`"),
    (8, "the sessions database or the data folder cannot be used (damaged, not writable, a file)"),
    (9, "the session is open in another window or process (`coach sessions resume ID --take-over` to take it)"),
    (10, "the model server (`--backend`) is down, silent past its timeout, or dropped the stream: nothing of that "
         "turn was stored; ask again"),
    (70, "an unexpected failure: one line, and the full trace in `COACH_HOME/logs/coach-crash.log`"),
    (130, "interrupted (Ctrl-C): what was answered is saved"),
)  # what `coach` exits with; `coach --help` and docs/cli.md show this table
