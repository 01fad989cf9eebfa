"""The one exception type that the CLI turns into a single stderr line and exit code 2."""


class GanbenchError(Exception):
    """Bad input or an unusable file: the message is shown to the user as one line."""


class TrainingDiverged(GanbenchError):
    """A loss or weight became non-finite; the message names the step and the network."""


class DatasetMissing(GanbenchError):
    """A dataset's files are not where ganbench looks: it may download them (data.catalog.load)."""


class TrainingStopped(Exception):
    """Training ended early on request (a signal, the time limit) after writing a checkpoint. The
    message is the one line to show; exit_code is the CLI's (130 SIGINT, 143 SIGTERM, 0 time limit)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
