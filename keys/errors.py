"""The one error type of keys/: every failure to read, write or unlock a key file is a KeyFileError."""


class KeyFileError(Exception):
    """A key file could not be written, read or unlocked; the message says which file and why."""


class KeyFileExistsError(KeyFileError, FileExistsError):
    """A key file already exists. Key files are never overwritten: losing a key is not undoable."""
