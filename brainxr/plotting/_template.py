"""The brain mask and anatomical background used when the user gives none.

Both are nilearn's: the MNI152 template of :mod:`brainxr.datasets.mni152`
(TemplateFlow's ``MNI152NLin2009aSym`` from its cache) and its brain mask at
2 mm; offline without the cache, the synthetic MNI152-like brain, with a
warning. A mask given by the user always wins.
"""

from __future__ import annotations

import numpy as np

from brainxr.plotting._inputs import Volume, as_volume

#: resolution (mm) of the template used for glass-brain outlines and backgrounds
TEMPLATE_RESOLUTION = 2


def _datasets():
    try:
        from brainxr import datasets
    except ImportError as error:
        raise RuntimeError(
            "brainxr.datasets is unavailable: pass brain_mask= (or bg_img=) explicitly"
        ) from error
    return datasets


def template_brain_mask(resolution: float = TEMPLATE_RESOLUTION) -> Volume:
    """The MNI152 brain mask of :func:`brainxr.datasets.load_mni152_brain_mask`."""
    return as_volume(_datasets().load_mni152_brain_mask(resolution), name="template brain mask")


def template_anatomy(resolution: float = TEMPLATE_RESOLUTION) -> Volume:
    """The MNI152 T1 template of :func:`brainxr.datasets.load_mni152_template`."""
    return as_volume(_datasets().load_mni152_template(resolution), name="template")


def resolve_brain_mask(brain_mask, data_volume: Volume | None = None) -> Volume:
    """The mask that draws glass-brain outlines, as a binary volume.

    The user's mask when given; else the template's; else, when the template
    is unavailable, the non-zero voxels of ``data_volume``.
    """
    if brain_mask is not None:
        mask = as_volume(brain_mask, name="brain_mask")
    else:
        try:
            mask = template_brain_mask()
        except (RuntimeError, AttributeError):
            if data_volume is None:
                raise
            mask = data_volume
    return Volume((np.abs(np.nan_to_num(mask.data)) > 0).astype(np.float32), mask.affine)
