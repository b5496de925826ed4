"""Exceptions raised by brainxr.

Every error about user input says which file, run or parameter is wrong and
what was expected, so a failure in a cohort of thousands of runs can be traced
to its cause without a debugger.
"""

from __future__ import annotations


class BrainxrError(Exception):
    """Base class of brainxr's own errors."""


class InputFileError(BrainxrError, ValueError):
    """A file given as input cannot be used.

    Parameters
    ----------
    path : str or os.PathLike
        The file at fault.
    problem : str
        What is wrong and what was expected.
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # keep the (path, problem) signature when errors cross process boundaries
        return (type(self), (self.path, self.problem))


class LocationError(BrainxrError, ValueError):
    """A path or URL cannot be used: unknown protocol, missing bucket or credentials, unreachable service.

    Parameters
    ----------
    url : str
        The path or URL at fault.
    problem : str
        What is wrong and what to do.
    """

    def __init__(self, url, problem: str):
        self.url = str(url)
        self.problem = problem
        super().__init__(f"{self.url}: {problem}")

    def __reduce__(self):
        return (type(self), (self.url, self.problem))


class GeometryError(BrainxrError, ValueError):
    """An image or table lacks the geometry or timing an operation needs.

    brainxr never substitutes an identity affine or a default repetition
    time: a missing grid or ``t_r`` is this error.

    Parameters
    ----------
    name : str
        The argument (or file) at fault.
    problem : str
        What is missing and where it was expected.
    """

    def __init__(self, name, problem: str):
        self.name, self.problem = str(name), problem
        super().__init__(f"{self.name}: {problem}")

    def __reduce__(self):
        return (type(self), (self.name, self.problem))


class StoreError(BrainxrError, ValueError):
    """A cohort store cannot be opened or written as asked."""


class StoreDamageError(StoreError):
    """Stored data is damaged: a chunk is missing, truncated or fails its checksum.

    Parameters
    ----------
    store : str
        The store (path or URL).
    run : str or None
        The run whose data is damaged (None for the store's own arrays).
    array : str
        The array (``bold``, ``confounds``, ``valid``, ...).
    problem : str
        What was found.
    """

    def __init__(self, store, run, array: str, problem: str):
        self.store, self.run, self.array, self.problem = str(store), run, array, problem
        where = f"run {run!r}, array {array!r}" if run is not None else f"array {array!r}"
        super().__init__(f"{self.store}: {where}: {problem}")

    def __reduce__(self):
        return (type(self), (self.store, self.run, self.array, self.problem))


class IngestError(BrainxrError):
    """Some runs of an ingest failed; the others completed.

    Parameters
    ----------
    failures : dict
        Run name -> the exception that stopped it.

    Attributes
    ----------
    failures : dict
        Run name -> the exception that stopped it.
    """

    def __init__(self, failures: dict):
        self.failures = dict(failures)
        lines = "\n".join(f"  - {name}: {err}" for name, err in self.failures.items())
        super().__init__(f"{len(self.failures)} run(s) failed to ingest:\n{lines}")

    def __reduce__(self):
        return (type(self), (self.failures,))
