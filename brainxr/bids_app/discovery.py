"""The runs of an fMRIPrep derivatives folder that the command processes, with one clear message per mistake.

A missing folder, a file, an empty folder, a folder without fMRIPrep BOLD
images, a participant or task that is not there (a typo), and a space or
resolution the data are not in each get their own message, naming the
option and listing what the folder holds.
"""

from __future__ import annotations

from pathlib import Path

from brainxr.bids import RunFiles, files_for_bold
from brainxr.bids_app.specs import BidsAppError

BOLD_PATTERN = "*_desc-preproc_bold.nii*"


def _listing(values) -> str:
    values = sorted({str(v) for v in values})
    shown = ", ".join(values[:12])
    return shown + (f", ... ({len(values)} in all)" if len(values) > 12 else "")


def _space_name(run: RunFiles) -> str:
    space, res = run.entities.get("space"), run.entities.get("res")
    return (space or "(no space)") + (f" (res {res})" if res else "")


def find_runs(bids_dir, participant_label=None, task=None, space=None, res=None) -> list[RunFiles]:
    """The preprocessed runs to process, sorted by run name.

    Parameters
    ----------
    bids_dir : path
        fMRIPrep derivatives folder.
    participant_label : list of str, optional
        Labels with or without ``sub-``.
    task, space, res : str, optional
        ``space`` is required when the folder holds several spaces.

    Raises
    ------
    BidsAppError
        One line per case, naming the folder or the option and listing what is there.
    """
    root = Path(bids_dir)
    if not root.exists():
        raise BidsAppError(f"bids_dir: {root} does not exist")
    if not root.is_dir():
        raise BidsAppError(f"bids_dir: {root} is a file; expected the fMRIPrep derivatives folder")
    if not any(root.iterdir()):
        raise BidsAppError(f"bids_dir: {root} is empty; expected fMRIPrep derivatives (sub-<label>/func/*{BOLD_PATTERN[1:]})")
    runs = [files_for_bold(path) for path in sorted(root.rglob(BOLD_PATTERN))]
    runs = [run for run in runs if "sub" in run.entities]
    if not runs:
        raise BidsAppError(
            f"bids_dir: {root} holds no fMRIPrep preprocessed BOLD image (sub-*/**/*{BOLD_PATTERN[1:]}); "
            "is it fMRIPrep's output folder?"
        )
    if participant_label:
        wanted = [label.removeprefix("sub-") for label in participant_label]
        present = {run.entities["sub"] for run in runs}
        missing = [label for label in wanted if label not in present]
        if missing:
            raise BidsAppError(f"--participant-label: no sub-{missing[0]} in {root}; participants: {_listing(present)}")
        runs = [run for run in runs if run.entities["sub"] in wanted]
    if task is not None:
        present = {run.entities.get("task") for run in runs} - {None}
        if task not in present:
            raise BidsAppError(f"--task: no task {task!r} in {root} (for the selected participants); tasks: {_listing(present)}")
        runs = [run for run in runs if run.entities.get("task") == task]
    if space is not None:
        kept = [run for run in runs if run.entities.get("space") == space]
        if not kept:
            raise BidsAppError(f"--space: no BOLD image in space {space!r} in {root}; spaces: {_listing(map(_space_name, runs))}")
        runs = kept
    if res is not None:
        kept = [run for run in runs if run.entities.get("res") == str(res)]
        if not kept:
            raise BidsAppError(f"--res: no BOLD image at res {res!r} in {root}; there are: {_listing(map(_space_name, runs))}")
        runs = kept
    spaces = {_space_name(run) for run in runs}
    if len(spaces) > 1:
        option = "--res" if len({run.entities.get("space") for run in runs}) == 1 else "--space (and --res)"
        raise BidsAppError(f"{option}: {root} holds BOLD images in several spaces ({_listing(spaces)}); choose one with {option}")
    keys = [run.key for run in runs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise BidsAppError(f"bids_dir: several BOLD images of run {repeated[0]} in {root}")
    return sorted(runs, key=lambda run: run.key)
