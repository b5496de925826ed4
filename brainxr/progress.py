"""Progress of long computations, in a terminal and in Jupyter, on threads or a cluster.

One helper for the whole library (ingest, cohort writes, the command line):

- :func:`compute` computes dask collections (DataArrays, Datasets, dask
  arrays, delayed objects) with a progress bar over their tasks. With an
  active ``distributed.Client`` (or ``client=``) the work runs on that
  client, with distributed's own progress bar and a link to its dashboard;
  otherwise on dask's local scheduler with a tqdm bar.
- :func:`as_completed` runs independent delayed tasks (one per run, say)
  and yields their results as they finish, with a bar counting them.
- :func:`active_client` is the client brainxr uses by default: the given
  one, else the active ``distributed.Client``, else None (local threads).
- :func:`bar` is the bar itself, for a Python loop.

Bars are tqdm's: a widget in Jupyter when ``ipywidgets`` is installed, text
elsewhere. Once this module is imported (brainxr's ingest and cohort modules
import it), a computation on dask's local scheduler started from the main
thread shows a bar by itself when it runs for longer than a second, however it
is started (``cohort.extract(...).compute()``, ``dask.compute``, ``.values``);
see :func:`set_options`. ``BRAINXR_PROGRESS=0`` in the environment turns every
bar off.

Examples
--------
>>> from brainxr import progress
>>> signals, = progress.compute(cohort.extract(atlas), desc="extract")  # doctest: +SKIP
>>> for result in progress.as_completed(tasks, desc="ingest", unit="run"):  # doctest: +SKIP
...     print(result)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed as _futures_as_completed
from html import escape

import dask
from dask.callbacks import Callback
from dask.utils import key_split

from brainxr._html import in_notebook

#: the automatic bar (see set_options)
_OPTIONS = {"auto": True, "delay": 1.0}


def set_options(auto: bool | None = None, delay: float | None = None) -> dict:
    """Set when computations show a bar by themselves; returns the previous options.

    Parameters
    ----------
    auto : bool, optional
        Show a bar for computations on dask's local scheduler started from
        the main thread, however they are started (``.compute()``,
        ``dask.compute``, ``.values``...).
    delay : float, optional
        Seconds a computation runs before its bar appears (quick ones show none).
    """
    previous = dict(_OPTIONS)
    if auto is not None:
        _OPTIONS["auto"] = bool(auto)
    if delay is not None:
        if not delay >= 0:
            raise ValueError(f"delay: expected a number of seconds >= 0, got {delay!r}")
        _OPTIONS["delay"] = float(delay)
    return previous


def enabled(progress: bool | None = True) -> bool:
    """Whether to show a bar: ``progress``, unless ``BRAINXR_PROGRESS=0`` turns bars off."""
    if os.environ.get("BRAINXR_PROGRESS", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return bool(progress)


# ---------------------------------------------------------------------------
# Where the work runs


def active_client(client=None):
    """The ``distributed.Client`` brainxr computes on: ``client``, else the active one, else None.

    Parameters
    ----------
    client : distributed.Client, None or False
        ``False`` means local threads even when a client is active.
    """
    if client is False:
        return None
    if client is not None:
        return client
    if "distributed" not in sys.modules:  # no client can be active without distributed imported
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def _has_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _tqdm_class():
    """tqdm's notebook widget in Jupyter (with ipywidgets), its text bar elsewhere.

    tqdm.auto's choice, without its warnings when ipywidgets is missing (text
    bars work in Jupyter too).
    """
    if in_notebook() and _has_widgets():
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


def bar(total: int | None = None, desc: str | None = None, unit: str = "it", progress: bool | None = True, **kwargs):
    """A progress bar (tqdm) for a Python loop, in a terminal or in Jupyter.

    Parameters
    ----------
    total : int, optional
    desc : str, optional
        Text before the bar.
    unit : str
    progress : bool
        False gives a bar that shows nothing.
    **kwargs
        Other ``tqdm`` options (``delay``, ``leave``...).
    """
    return _tqdm_class()(total=total, desc=desc, unit=unit, disable=not enabled(progress), **kwargs)


def show_dashboard_link(client) -> None:
    """Tell where the client's dashboard is: a link in Jupyter, a line on stderr elsewhere."""
    link = getattr(client, "dashboard_link", None)
    if not link:
        return
    if in_notebook():
        from IPython.display import HTML, display

        display(HTML(f'<p>dask dashboard: <a href="{escape(link)}" target="_blank">{escape(link)}</a></p>'))
    else:
        print(f"dask dashboard: {link}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# A bar over the tasks of a local-scheduler computation

# per thread: ``quiet`` silences the automatic bar (inside compute(), which shows its own)
_local = threading.local()


class _TaskBar(Callback):
    """A bar counting the finished tasks of computations on a local dask scheduler.

    The explicit bar (``auto=False``, used by :func:`compute`) follows the
    computations started by the thread that entered it; the automatic one
    (registered once) those of the main thread, shown after
    ``_OPTIONS["delay"]`` seconds (not those of worker threads, as the tasks
    of :func:`as_completed` or of a distributed worker).
    """

    def __init__(self, desc=None, auto=False):
        super().__init__()
        self.desc = desc
        self.auto = auto
        self._thread = threading.get_ident()
        self._bars = {}  # one bar per computation (its scheduler state), threads may overlap

    def _wanted(self, dsk) -> bool:
        if not self.auto:
            return threading.get_ident() == self._thread
        return (_OPTIONS["auto"] and enabled() and not getattr(_local, "quiet", False)
                and threading.current_thread() is threading.main_thread())

    def _start_state(self, dsk, state):
        if self._wanted(dsk):
            total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            self._bars[id(state)] = bar(total, desc=self.desc or _describe(dsk), unit="task",
                                        delay=_OPTIONS["delay"] if self.auto else 0)

    def _posttask(self, key, result, dsk, state, worker_id):
        task_bar = self._bars.get(id(state))
        if task_bar is not None:
            task_bar.update(1)

    def _finish(self, dsk, state, errored):
        task_bar = self._bars.pop(id(state), None)
        if task_bar is not None:
            task_bar.close()


def _describe(dsk) -> str:
    """A graph's brainxr task family (``brainxr-extract`` for ``('brainxr-extract-1a2b', 0)``), else "compute"."""
    names = sorted({str(key_split(key)) for key in dsk if "brainxr" in str(key)})
    return names[-1] if names else "compute"


@contextlib.contextmanager
def _quiet():
    """No automatic bar for the computations of this thread (it shows its own)."""
    before = getattr(_local, "quiet", False)
    _local.quiet = True
    try:
        yield
    finally:
        _local.quiet = before


# long computations show a bar however they are started
_AUTO_BAR = _TaskBar(auto=True)
_AUTO_BAR.register()


def _keep_auto_bar() -> None:
    """Register the automatic bar again if it was lost.

    dask swaps its global callbacks out and back around every local
    computation; two local computations running at once in different threads
    (tasks of an in-process cluster computing inside, say) can put back an
    empty set. brainxr calls this after its own parallel work.
    """
    if _AUTO_BAR._callback not in Callback.active:
        Callback.active.add(_AUTO_BAR._callback)


# ---------------------------------------------------------------------------
# Compute with a bar


#: dask's local schedulers by name
_LOCAL_SCHEDULERS = {"threads": "dask.threaded", "threading": "dask.threaded", "sync": "dask.local",
                     "synchronous": "dask.local", "single-threaded": "dask.local"}


def local_scheduler(scheduler="threads"):
    """The function of a dask local scheduler: pass it as ``scheduler=`` instead of its name.

    Given a scheduler's name (or nothing), :func:`dask.compute` imports
    ``distributed`` to look for an active client (0.3 s of a command's
    start-up); given the function, it does not.

    Parameters
    ----------
    scheduler : str or callable
        ``"threads"`` or ``"sync"`` (and their aliases); anything else is
        returned as it is.
    """
    if not isinstance(scheduler, str) or scheduler.lower() not in _LOCAL_SCHEDULERS:
        return scheduler
    import importlib

    module = importlib.import_module(_LOCAL_SCHEDULERS[scheduler.lower()])
    return module.get if module.__name__ == "dask.threaded" else module.get_sync


def compute(*collections, desc: str | None = None, progress: bool | None = True, client=None, **kwargs) -> tuple:
    """Compute dask collections with a progress bar, on the active client if there is one.

    Parameters
    ----------
    *collections
        DataArrays, Datasets, dask arrays, delayed objects (anything
        :func:`dask.compute` takes).
    desc : str, optional
        Text before the bar.
    progress : bool, default=True
        Show the bar (and, on a cluster, the dashboard link).
    client : distributed.Client, None or False
        Where to compute: this client; None: the active client if any, else
        dask's local scheduler (``scheduler=``/``num_workers=`` may choose
        it); False: the local scheduler even when a client is active.
    **kwargs
        Passed to :func:`dask.compute` on a local scheduler.

    Returns
    -------
    tuple
        The computed values, in order (as :func:`dask.compute`).
    """
    show = enabled(progress)
    if client is False:
        kwargs.setdefault("scheduler", "threads")  # dask itself would pick the active client
    client = None if "scheduler" in kwargs else active_client(client)
    if client is None:
        kwargs["scheduler"] = local_scheduler(kwargs.get("scheduler") or dask.config.get("scheduler", None)
                                              or "threads")
    if client is None:
        if not show:
            with _quiet():
                return dask.compute(*collections, **kwargs)
        try:
            with _quiet(), _TaskBar(desc=desc):
                return dask.compute(*collections, **kwargs)
        finally:
            _keep_auto_bar()
    futures = client.compute(list(collections))
    try:
        if show:
            show_dashboard_link(client)
            _distributed_progress(futures)
        return tuple(client.gather(futures))
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        _keep_auto_bar()


def _distributed_progress(futures) -> None:
    """distributed's own progress bar: a widget in Jupyter (with ipywidgets), text elsewhere (blocks)."""
    from distributed.diagnostics.progressbar import progress

    if in_notebook() and _has_widgets():
        from IPython.display import display

        display(progress(futures, notebook=True, multi=False))
    else:
        progress(futures, notebook=False)


class as_completed:  # noqa: N801 - used like concurrent.futures.as_completed
    """Run independent delayed tasks; iterate over their results as they finish.

    With a client (given or active) the tasks run on its workers; otherwise
    on ``n_workers`` local threads, one task per thread, each task computed
    by dask's synchronous scheduler. A bar counts the finished tasks. When
    the loop is left early (an error, Ctrl-C), tasks not yet started are
    cancelled.

    Parameters
    ----------
    tasks : sequence of dask.delayed.Delayed
    desc : str, optional
        Text before the bar, e.g. ``"ingest"``.
    unit : str
        What a task is, e.g. ``"run"``.
    progress : bool
    client : distributed.Client, None or False
        As in :func:`compute`.
    n_workers : int
        Local threads.

    Examples
    --------
    >>> done = as_completed(tasks, desc="ingest", unit="run")  # doctest: +SKIP
    >>> for result in done:  # doctest: +SKIP
    ...     done.set_postfix(failed=...)
    """

    def __init__(self, tasks, desc: str | None = None, unit: str = "task", progress: bool | None = True,
                 client=None, n_workers: int = 2):
        self.tasks = list(tasks)
        self.client = active_client(client)
        if self.client is None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
            raise ValueError(f"n_workers: expected a positive number of threads, got {n_workers!r}")
        self.n_workers = n_workers
        self._show = enabled(progress)
        self._bar = bar(len(self.tasks), desc=desc, unit=unit, progress=self._show)

    def set_postfix(self, **values) -> None:
        """Show ``name=value`` after the bar (e.g. the number of failures).

        Parameters
        ----------
        **values
            The names and values shown.
        """
        self._bar.set_postfix(**values)

    def __iter__(self):
        try:
            if self.client is not None:
                yield from self._on_client()
            else:
                yield from self._on_threads()
        finally:
            self._bar.close()
            _keep_auto_bar()

    def _on_client(self):
        from distributed import as_completed as distributed_as_completed

        if self._show and self.tasks:
            show_dashboard_link(self.client)
        futures = self.client.compute(self.tasks)
        try:
            for future in distributed_as_completed(futures):
                result = future.result()
                self._bar.update(1)
                yield result
        finally:
            self.client.cancel(futures)

    def _on_threads(self):
        executor = ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix="brainxr")
        try:
            # callbacks=(): dask swaps its global callbacks out and back around a computation
            # that uses them, which concurrent threads would lose
            synchronous = local_scheduler("sync")
            futures = [executor.submit(dask.compute, task, scheduler=synchronous, callbacks=()) for task in self.tasks]
            for future in _futures_as_completed(futures):
                (result,) = future.result()
                self._bar.update(1)
                yield result
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

