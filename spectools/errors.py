"""The one exception type that spectools raises for bad input.

Every message is a single line that names the file and what is wrong with it,
so that the command line can print it as is and exit with status 2.
"""


class SpectoolsError(Exception):
    """Bad input or an impossible request, described in one line.

    Parameters
    ----------
    message : str
        What is wrong, in words a user can act on.
    path : str or os.PathLike, optional
        The file the problem is about; prefixed to the message.
    """

    def __init__(self, message, path=None):
        self.path = None if path is None else str(path)
        self.reason = " ".join(str(message).split())
        super().__init__(f"{self.path}: {self.reason}" if self.path else self.reason)
