"""Where data lives: a local path or an fsspec URL, as one :class:`Location` type.

A cohort store or a source file may be a local path or any URL fsspec knows
(``s3://``, ``gs://``, ``az://``, ``file://``, ``memory://``, chained URLs
such as ``simplecache::s3://``), with ``storage_options`` for the filesystem
(credentials, endpoint...). Without options, credentials and endpoints come
from the standard environment, as every client of the service reads them
(for S3, botocore reads ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``).

A Location is small and picklable (the URL and its options; the filesystem is
made again in each process), so dask workers open data from the same URL as
the client. Local paths are made absolute, so nothing depends on a process's
working directory. A string that cannot be honoured (an unknown protocol, a
missing filesystem package, ``memory:/x`` without ``//``) is an error, never a
local folder with a strange name.

Zarr reads and writes through its own store classes (``LocalStore``,
``FsspecStore``); this module adds what a store needs beyond Zarr: exclusive
creation and atomic replacement of small objects (locks, the runs index),
listing, removal of exactly one tree, and lease locks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from functools import cached_property, lru_cache

from brainxr.errors import LocationError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_SCHEME_ONLY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(?!//)")
_GLOB_CHARACTERS = set("*?[")


class Location:
    """A local path or an fsspec URL with its storage options.

    Build one with :func:`as_location`. ``str(location)`` is the absolute
    path or the URL.

    Parameters
    ----------
    url : str
        An absolute local path, or a URL.
    storage_options : dict, optional
        Filesystem options for a URL (``{"anon": True}``, ``{"client_kwargs":
        {"endpoint_url": ...}}``...).
    """

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = url
        self.storage_options = dict(storage_options or {})
        self._stat: dict | None = None  # size and mtime from a listing (see find)

    # -- identity ----------------------------------------------------------
    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        options = f", storage_options={self.storage_options!r}" if self.storage_options else ""
        return f"Location({self.url!r}{options})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Location) and (self.url, self._options_key) == (other.url, other._options_key)

    def __hash__(self) -> int:
        return hash((self.url, self._options_key))

    def __reduce__(self):
        return (Location, (self.url, self.storage_options))

    @property
    def _options_key(self) -> str:
        return json.dumps(self.storage_options, sort_keys=True, default=repr)

    @property
    def is_local(self) -> bool:
        """Whether this is a path of the local (or a mounted shared) filesystem."""
        return self.url.startswith("/")

    @property
    def protocol(self) -> str:
        return "file" if self.is_local else self.url.split("://", 1)[0].split("::")[-1]

    # -- paths -------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        head = self.url.rstrip("/").rsplit("/", 1)[0]
        return Location(head or "/", self.storage_options)

    def __truediv__(self, child: str) -> Location:
        child = str(child).strip("/")
        if not child or any(part in ("", ".", "..") for part in child.split("/")):
            raise ValueError(f"{self}: cannot join {child!r}")
        return Location(self.url.rstrip("/") + "/" + child, self.storage_options)

    def with_name(self, name: str) -> Location:
        return self.parent / name

    def relative_to(self, other: Location) -> str:
        """This location's path below ``other``, with ``/`` separators.

        Parameters
        ----------
        other : Location
            A location above this one.
        """
        prefix = other.url.rstrip("/") + "/"
        if not self.url.startswith(prefix):
            raise ValueError(f"{self} is not below {other}")
        return self.url[len(prefix):]

    # -- filesystem --------------------------------------------------------
    @cached_property
    def _fs_and_path(self):
        import fsspec

        if self.is_local:
            return fsspec.filesystem("file"), self.url
        with access_errors(self):
            return fsspec.core.url_to_fs(self.url, **_client_options(self.url, self.storage_options))

    @property
    def fs(self):
        """The fsspec filesystem (synchronous API)."""
        return self._fs_and_path[0]

    @property
    def path(self) -> str:
        """The path within :attr:`fs`."""
        return self._fs_and_path[1]

    def zarr_store(self, read_only: bool = False):
        """Zarr's own store class for this location (``LocalStore`` or ``FsspecStore``), one per process.

        Parameters
        ----------
        read_only : bool
            Open the store read-only.
        """
        return _zarr_store(self.url, self._options_key, read_only)

    def exists(self) -> bool:
        with access_errors(self):
            return os.path.exists(self.url) if self.is_local else self.fs.exists(self.path)

    def is_dir(self) -> bool:
        with access_errors(self):
            return os.path.isdir(self.url) if self.is_local else self.fs.isdir(self.path)

    def open(self, mode: str = "rb", **kwargs):
        """A file object.

        Parameters
        ----------
        mode : str
            ``"rb"``, ``"wb"``...
        **kwargs
            fsspec's options of ``open`` (``block_size``, ``cache_type``...).
        """
        if self.is_local:
            return open(self.url, mode)
        with access_errors(self):
            return self.fs.open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        with access_errors(self):
            if self.is_local:
                with open(self.url, "rb") as f:
                    return f.read()
            return self.fs.cat_file(self.path)

    def read_many(self, relative_paths) -> list:
        """Bytes of several objects below this location (None where missing), fetched concurrently.

        Parameters
        ----------
        relative_paths : iterable of str
            Paths below this location, with ``/`` separators.
        """
        relative_paths = list(relative_paths)
        with access_errors(self):
            if self.is_local:
                out = []
                for relative in relative_paths:
                    try:
                        with open(os.path.join(self.url, relative), "rb") as f:
                            out.append(f.read())
                    except (FileNotFoundError, NotADirectoryError):
                        out.append(None)
                return out
            paths = [self.path.rstrip("/") + "/" + relative for relative in relative_paths]
            fetched = self.fs.cat(paths, on_error="return")
        for value in fetched.values():
            if isinstance(value, Exception) and not isinstance(value, FileNotFoundError):
                problem = _access_problem(value)
                if problem:
                    raise LocationError(self.url, problem) from value
                raise value
        return [None if isinstance(fetched.get(path), Exception) else fetched.get(path) for path in paths]

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def stat(self) -> dict:
        """``size`` (bytes) and ``mtime_ns`` (last modification, ns since the epoch) of a file."""
        if self._stat is not None:
            return self._stat
        with access_errors(self):
            if self.is_local:
                info = os.stat(self.url)
                return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}
            return _stat_record(self.fs.info(self.path))

    def list_names(self) -> list[str]:
        """Names of the entries directly below this location (one listing; none if it does not exist)."""
        with access_errors(self):
            if self.is_local:
                try:
                    return sorted(os.listdir(self.url))
                except (FileNotFoundError, NotADirectoryError):
                    return []
            try:
                entries = self.fs.ls(self.path, detail=False, refresh=True)
            except FileNotFoundError as err:
                if _access_problem(err):  # a missing bucket, not a missing folder
                    raise
                return []
        prefix = self.path.rstrip("/") + "/"
        return sorted({entry.rstrip("/")[len(prefix):] for entry in entries if entry.startswith(prefix)} - {""})

    def find(self) -> list[Location]:
        """Every file below this location, from one recursive listing.

        On object stores the listing also gives each file's size and
        modification time, kept for :meth:`stat` (no request per file).
        """
        with access_errors(self):
            if self.is_local:
                return sorted(Location(os.path.join(folder, name))
                              for folder, _, names in os.walk(self.url) for name in names)
            found = self.fs.find(self.path, detail=True)
        prefix = self.path.rstrip("/") + "/"
        files = []
        for path, info in found.items():
            if path.startswith(prefix) and info.get("type", "file") != "directory":
                file = self / path[len(prefix):]
                file._stat = _stat_record(info)
                files.append(file)
        return sorted(files)

    def __lt__(self, other: Location) -> bool:
        return self.url < other.url

    # -- writing small objects ----------------------------------------------
    def write_bytes(self, data: bytes) -> None:
        """Replace the object atomically: readers see the old or the new bytes, never a part.

        A local file is written beside and renamed over (``os.replace``); an
        object store replaces an object in one PUT.

        Parameters
        ----------
        data : bytes
            The new content.
        """
        with access_errors(self):
            if self.is_local:
                os.makedirs(os.path.dirname(self.url), exist_ok=True)
                temporary = f"{self.url}.{uuid.uuid4().hex}.tmp"
                try:
                    with open(temporary, "wb") as f:
                        f.write(data)
                    os.replace(temporary, self.url)
                finally:
                    if os.path.exists(temporary):
                        os.remove(temporary)
            else:
                self.fs.pipe_file(self.path, data)

    def create_exclusive(self, data: bytes) -> bool:
        """Create the object with ``data`` unless it exists; return whether this call created it.

        Locally the bytes are written to a unique file that is then hard-linked
        to the name (the link fails if the name exists: exclusive even on NFS,
        and never a half-written object); object stores use a conditional PUT
        (S3 ``If-None-Match: *``, through fsspec's ``mode="create"``).

        Parameters
        ----------
        data : bytes
            The object's content.
        """
        with access_errors(self):
            if self.is_local:
                os.makedirs(os.path.dirname(self.url), exist_ok=True)
                temporary = f"{self.url}.{uuid.uuid4().hex}.tmp"
                with open(temporary, "wb") as f:
                    f.write(data)
                try:
                    os.link(temporary, self.url)
                    return True
                except FileExistsError:
                    return False
                finally:
                    os.remove(temporary)
            try:
                self.fs.pipe_file(self.path, data, mode="create")
                return True
            except FileExistsError:
                return False

    def remove(self) -> None:
        """Remove one object or file (nothing if absent)."""
        with access_errors(self):
            try:
                if self.is_local:
                    os.remove(self.url)
                else:
                    self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass

    def remove_tree(self) -> None:
        """Remove this folder (or object prefix) and everything below it, and nothing else."""
        with access_errors(self):
            if self.is_local:
                shutil.rmtree(self.url, ignore_errors=True)
                return
            if _GLOB_CHARACTERS & set(self.path):  # fsspec would expand them
                raise LocationError(self.url, "cannot remove a path holding glob characters (* ? [)")
            try:
                self.fs.rm(self.path, recursive=True)
            except FileNotFoundError:
                pass


def _stat_record(info: dict) -> dict:
    """``size`` and ``mtime_ns`` from an fsspec ``info`` dict (each filesystem names the time its own way)."""
    modified = info.get("LastModified", info.get("mtime", info.get("created")))
    if hasattr(modified, "timestamp"):
        modified = modified.timestamp()
    return {"size": int(info["size"]), "mtime_ns": None if modified is None else int(float(modified) * 1e9)}


def _client_options(url: str, storage_options: dict) -> dict:
    """Storage options with brainxr's defaults for a protocol (the user's own options win).

    s3fs reads whole objects with a HEAD request first (to split large ones
    into concurrent ranged reads) unless ``max_concurrency`` is 1: with Zarr
    chunks of at most ~32 MB that HEAD only doubles the requests.
    """
    if url.startswith("s3://") or url.startswith("s3a://"):
        return {"max_concurrency": 1, **storage_options}
    return dict(storage_options)


@lru_cache(maxsize=64)
def _zarr_store(url: str, options_key: str, read_only: bool):
    from zarr.storage import FsspecStore, LocalStore

    if url.startswith("/"):
        return LocalStore(url, read_only=read_only)
    storage_options = json.loads(options_key)
    with access_errors(Location(url, storage_options)):
        return FsspecStore.from_url(url, storage_options=_client_options(url, storage_options) or None,
                                    read_only=read_only)


def as_location(value, storage_options: dict | None = None) -> Location:
    """A :class:`Location` from a path, a URL or a Location.

    Parameters
    ----------
    value : str, os.PathLike or Location
        A local path (made absolute) or a URL (``s3://bucket/cohort.zarr``,
        ``file:///data/cohort.zarr``, ``memory://cohort.zarr``...).
    storage_options : dict, optional
        fsspec options of a URL; they update those of a Location.

    Raises
    ------
    LocationError
        If a URL names an unknown protocol or one whose package is missing,
        or a string looks like a URL without ``//``.
    """
    if isinstance(value, Location):
        if not storage_options:
            return value
        return Location(value.url, {**value.storage_options, **storage_options})
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected a path or URL, got {value!r}")
    if _URL.match(value) or "::" in value:
        return _url_location(value, storage_options)
    scheme = _SCHEME_ONLY.match(value)
    if scheme:
        raise LocationError(
            value, f"looks like a URL (scheme {scheme.group(1)!r}) without '//': write {scheme.group(1)}://..., "
            f"or ./{value} for a local path"
        )
    if storage_options:
        raise ValueError(f"storage_options apply to URLs, not to the local path {value!r}")
    return Location(os.path.abspath(os.path.expanduser(value)))


def _url_location(url: str, storage_options: dict | None) -> Location:
    import fsspec

    protocols = [_URL.match(part).group(1).lower() if _URL.match(part) else part.split(":")[0]
                 for part in url.split("::")]
    for protocol in protocols:
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as err:
            raise LocationError(url, f"the {protocol}:// protocol needs a package that is not installed ({err})") from err
        except ValueError as err:
            raise LocationError(url, f"unknown protocol {protocol!r} (fsspec knows file, memory, s3, gs, az, "
                                     "http, ...)") from err
    if protocols == ["file"]:
        if storage_options:
            raise ValueError(f"storage_options apply to remote URLs, not to {url!r}")
        return Location(os.path.abspath(url[len("file://"):]))
    return Location(url.rstrip("/"), storage_options)


# ---------------------------------------------------------------------------
# Errors of remote storage, in words that name the URL


def _access_problem(err: BaseException) -> str | None:
    """What an exception of a storage client says about access, or None if it is not about access."""
    names = {cls.__name__ for cls in type(err).__mro__}
    text = str(err)
    if names & {"NoCredentialsError", "PartialCredentialsError"} or "Unable to locate credentials" in text:
        return ("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass "
                "storage_options (e.g. {'anon': True} for a public bucket)")
    if "bucket does not exist" in text or "NoSuchBucket" in text:
        return "the bucket does not exist"
    if isinstance(err, PermissionError) or names & {"ClientAuthenticationError"} or "AccessDenied" in text:
        return f"access denied ({text})"
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError"}:
        return f"cannot reach the storage service ({text})"
    return None


@contextmanager
def access_errors(location):
    """Turn a storage client's credential, bucket and connection errors into a LocationError naming the URL."""
    try:
        yield
    except LocationError:
        raise
    except Exception as err:
        problem = _access_problem(err)
        if problem is None:
            raise
        raise LocationError(str(location), problem) from err


# ---------------------------------------------------------------------------
# Lease locks


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseLock:
    """An exclusive lock object with a lease, for local disks and object stores alike.

    The lock is a small JSON object created exclusively (see
    :meth:`Location.create_exclusive`) holding who holds it (host, pid), since
    when, and a heartbeat refreshed by a thread every ``lease / 4`` seconds.
    A lock is stale, and broken by the next taker, when its process is gone
    (same host) or its heartbeat is older than ``lease``.

    Parameters
    ----------
    location : Location
        The lock object.
    lease : float
        Seconds without a heartbeat after which a lock is stale.
    """

    def __init__(self, location: Location, lease: float = 300.0):
        self.location = location
        self.lease = float(lease)
        self.token = uuid.uuid4().hex
        self.holder: dict | None = None  # the other holder, when acquire() failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self, started: float) -> bytes:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": started,
                           "heartbeat": time.time(), "token": self.token}).encode()

    def _read(self) -> dict | None:
        try:
            return json.loads(self.location.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            return {}  # unreadable: stale once older than the lease

    def is_stale(self, holder: dict) -> bool:
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            if not _process_alive(holder["pid"]):
                return True
        heartbeat = holder.get("heartbeat")
        if heartbeat is None:
            heartbeat = (self.location.stat().get("mtime_ns") or 0) / 1e9
        return time.time() - float(heartbeat) > self.lease

    def acquire(self, timeout: float = 0.0, poll: float = 0.2) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds; False (and :attr:`holder` set) if held."""
        deadline = time.monotonic() + timeout
        started = time.time()
        while True:
            if self.location.create_exclusive(self._record(started)):
                self.holder = None
                self._thread = threading.Thread(target=self._heartbeat, args=(started,), daemon=True)
                self._thread.start()
                return True
            holder = self._read()
            if holder is not None and self.is_stale(holder):
                self._break(holder)
                continue
            if holder is not None:
                self.holder = holder
                if time.monotonic() >= deadline:
                    return False
            time.sleep(poll)

    def _break(self, stale: dict) -> None:
        """Remove a stale lock, unless someone else is breaking or has retaken it."""
        breaker = self.location.with_name(self.location.name + ".break")
        if not breaker.create_exclusive(b""):
            # another process is breaking it; a breaker left by a killed process expires after a minute
            modified = breaker.stat().get("mtime_ns") if breaker.exists() else None
            if modified is not None and time.time() - modified / 1e9 > 60:
                breaker.remove()
            time.sleep(0.1)
            return
        try:
            if self._read() == stale:
                self.location.remove()
        finally:
            breaker.remove()

    def _heartbeat(self, started: float) -> None:
        while not self._stop.wait(self.lease / 4):
            current = self._read()
            if not current or current.get("token") != self.token:
                return  # broken by someone who judged it stale: never overwrite their lock
            self.location.write_bytes(self._record(started))

    def held(self) -> bool:
        """Whether this lock is still ours (not broken as stale by another process)."""
        current = self._read()
        return bool(current) and current.get("token") == self.token

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.held():
            self.location.remove()

    def describe_holder(self) -> str:
        """The other holder in words: host, pid and since when."""
        holder = self.holder or {}
        since = holder.get("started")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "an unknown time"
        return f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since {when}"
