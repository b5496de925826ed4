"""Download, cache and unpack public data files.

Files are downloaded with :mod:`pooch` (to a temporary file, moved into place
only once complete, so an interrupted transfer never looks cached), checked
against a known SHA256 hash when one is registered, and kept under the data
folder: ``data_dir`` if given, else ``$BRAINXR_DATA``, else ``~/brainxr_data``.
A file (or every member wanted from an archive) already on disk is not
downloaded again.

Every dataset URL is a base plus a relative path. The base is, in order: the
fetcher's ``url`` argument, ``$BRAINXR_DATASETS_URL`` (a mirror with the same
relative layout, e.g. a local server in tests), or the dataset's public host.

Failures raise :class:`DownloadError` naming the URL and what went wrong:
HTTP errors (404...), refused or dropped connections, checksum mismatches,
archives that are corrupt or lack an expected member (the bad archive is
removed so that the next call downloads it again).
"""

from __future__ import annotations

import logging
import os
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from brainxr.errors import BrainxrError

DATA_DIR_ENV = "BRAINXR_DATA"
MIRROR_URL_ENV = "BRAINXR_DATASETS_URL"
_TIMEOUT = 60

# SHA256 of files whose content is known: {relative URL path: "sha256:..."}.
# Fetchers look their files up here; files without an entry are not checked.
KNOWN_HASHES: dict[str, str] = {}


class DownloadError(BrainxrError, OSError):
    """A data file could not be downloaded, verified or unpacked.

    Parameters
    ----------
    url : str
        Where the file comes from.
    problem : str
        What went wrong and what to do about it.
    """

    def __init__(self, url, problem: str):
        self.url = str(url)
        self.problem = problem
        super().__init__(f"{self.url}: {problem}")

    def __reduce__(self):
        return (type(self), (self.url, self.problem))


def get_data_dir(data_dir=None) -> Path:
    """The root data folder: ``data_dir``, else ``$BRAINXR_DATA``, else ``~/brainxr_data``.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        A folder chosen by the caller.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return Path("~/brainxr_data").expanduser()


def dataset_dir(name, data_dir=None) -> Path:
    """The folder of one dataset under the data folder (created)."""
    folder = get_data_dir(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resolve_url(default_base, relative, url=None) -> str:
    """Join a base (``url``, ``$BRAINXR_DATASETS_URL`` or ``default_base``) and a relative path."""
    base = url or os.environ.get(MIRROR_URL_ENV) or default_base
    return base.rstrip("/") + "/" + relative.lstrip("/")


def _known_hash(relative):
    return KNOWN_HASHES.get(relative)


def _set_verbosity(verbose):
    import pooch

    pooch.get_logger().setLevel(logging.INFO if verbose and verbose > 1 else logging.WARNING)


def download(url, destination, *, known_hash=None, verbose=1) -> Path:
    """Download ``url`` to ``destination`` unless it is there (and matches ``known_hash``).

    Parameters
    ----------
    url : str
    destination : pathlib.Path
        Final path of the file.
    known_hash : str or None
        ``"sha256:<hex>"`` (or any pooch hash string); None skips the check.

    Returns
    -------
    pathlib.Path
    """
    # pooch and requests only when a file is downloaded: reading a cached template never pays their import
    import pooch
    import requests

    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    _set_verbosity(verbose)
    if str(url).startswith("ftp://"):  # FreeSurfer's Yeo 2011 networks
        downloader = pooch.FTPDownloader(progressbar=False, timeout=_TIMEOUT)
    else:
        downloader = pooch.HTTPDownloader(progressbar=False, timeout=_TIMEOUT)
    try:
        path = pooch.retrieve(
            url,
            known_hash=known_hash,
            fname=destination.name,
            path=destination.parent,
            downloader=downloader,
        )
    except requests.exceptions.HTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise DownloadError(url, f"the server answered HTTP {status}; is the URL right and the file published?") from error
    except requests.exceptions.ChunkedEncodingError as error:
        raise DownloadError(url, f"the connection dropped before the file was complete ({error}); nothing was kept, try again") from error
    except requests.exceptions.ConnectionError as error:
        raise DownloadError(url, f"could not connect ({error}); check the network, or set ${MIRROR_URL_ENV} to a mirror") from error
    except requests.exceptions.Timeout as error:
        raise DownloadError(url, f"no answer within {_TIMEOUT} s") from error
    except ValueError as error:
        if "hash" not in str(error).lower():
            raise
        raise DownloadError(url, f"checksum mismatch, the download was discarded: {error}") from error
    return Path(path)


def _open_archive(path):
    name = path.name.lower()
    if name.endswith(".zip"):
        return zipfile.ZipFile(path)
    return tarfile.open(path)


def _extract(archive, members, destination, url):
    """Extract ``members`` (POSIX paths inside the archive) of ``archive`` under ``destination``."""
    try:
        with _open_archive(archive) as opened:
            if isinstance(opened, zipfile.ZipFile):
                names = set(opened.namelist())
                missing = [member for member in members if member not in names]
                if missing:
                    raise DownloadError(url, f"the archive has no member {missing[0]!r}")
                for member in members:
                    opened.extract(member, destination)
            else:
                found = {}
                for info in opened:
                    if info.name in members or info.name.lstrip("./") in members:
                        found[info.name.lstrip("./")] = info
                missing = [member for member in members if member not in found]
                if missing:
                    raise DownloadError(url, f"the archive has no member {missing[0]!r}")
                for info in found.values():
                    opened.extract(info, destination, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        if isinstance(error, DownloadError):
            raise
        raise _CorruptArchive(str(error)) from error


class _CorruptArchive(Exception):
    pass


def fetch_archive_members(url, archive_name, members, destination, *, known_hash=None, verbose=1):
    """Paths of ``members`` of the archive at ``url``, extracted under ``destination``.

    Downloads the archive only when a member is missing; the archive is
    deleted once unpacked. A corrupt archive is deleted and downloaded once
    more before giving up.

    Parameters
    ----------
    url : str
    archive_name : str
        File name to store the archive under while it is unpacked.
    members : list of str
        POSIX paths inside the archive.
    destination : pathlib.Path

    Returns
    -------
    list of pathlib.Path
    """
    destination = Path(destination)
    targets = [destination.joinpath(*PurePosixPath(member).parts) for member in members]
    if all(target.is_file() for target in targets):
        return targets
    archive = destination / archive_name
    for attempt in (1, 2):
        download(url, archive, known_hash=known_hash, verbose=verbose)
        try:
            _extract(archive, members, destination, url)
        except _CorruptArchive as error:
            archive.unlink(missing_ok=True)
            if attempt == 2:
                raise DownloadError(
                    url, f"the downloaded archive is corrupt or truncated ({error}); it was deleted, try again"
                ) from None
            continue
        except DownloadError:
            archive.unlink(missing_ok=True)
            raise
        break
    archive.unlink(missing_ok=True)
    return targets
