"""The project's error classes.

Every problem a user can cause (a bad file, a bad setting) raises a subclass of
:class:`M2DError` whose message says what is wrong and what to do. Front ends
catch :class:`M2DError` only: the CLI prints the message and exits with status 2,
the Blender extension shows it in its report. Anything else is a bug.
"""


class M2DError(Exception):
    """A problem with the user's input or set-up, explained in the message."""


class AudioError(M2DError):
    """The music file cannot be used."""


class WeightsError(M2DError):
    """The model weights or their config cannot be loaded."""


class ConstraintsError(M2DError):
    """The pins given for inpainting are malformed or contradict each other."""


class DeviceError(M2DError):
    """The requested compute device is not available.

    The message is ``problem`` followed by ``remedy``, what to do in the command line's words
    (``--device``); a front end with its own words for the setting shows ``problem`` with those.
    """

    def __init__(self, problem: str, remedy: str = ""):
        super().__init__(f"{problem} {remedy}".strip())
        self.problem = problem


class DataError(M2DError):
    """A training data set or cache cannot be read."""


class ProtocolError(M2DError):
    """A request to the worker does not follow :mod:`inference.protocol` (a field unknown, missing or mistyped)."""


class Cancelled(M2DError):
    """The user cancelled a running job."""

    def __init__(self, message: str = "Cancelled by the user; nothing was written."):
        super().__init__(message)
