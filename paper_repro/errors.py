"""The one exception type for errors a user can cause (bad file, bad value, bad preset)."""


class PaperReproError(ValueError):
    """A problem with the user's input; the message names what was expected and what was found.

    The CLI prints it as a single line and exits with status 2.
    """


class TrainingDiverged(PaperReproError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`PaperReproError` with ``message`` unless ``condition`` holds (checks of settings)."""
    if not condition:
        raise PaperReproError(message)
