"""Region signals: labels, probabilistic maps and spheres as chunked reductions.

Every extraction reads ``(time, voxel)`` signals (numpy or dask; the layout of
:func:`brainxr.apply_mask` and of cohort runs) or a 4D image, and returns
``(time, region)`` signals labeled with region names, label values, centres
and coverage, lazily for dask inputs (a NIfTI file is read in one streaming
pass per run). :func:`extract_cohort` does the same for many runs at once,
optionally followed by cleaning; :func:`whole_brain_signals` gives the
``(time, voxel)`` signals of a brain mask, smoothed block by block.
"""

from brainxr.regions.atlas import LabelsAtlas, MapsAtlas, load_labels_atlas, load_maps_atlas, look_up_table
from brainxr.regions.cohort import extract, extract_cohort
from brainxr.regions.labels import STRATEGIES, extract_labels, labels_to_volume
from brainxr.regions.maps import extract_maps, maps_to_volume
from brainxr.regions.signal_extraction import (
    img_to_signals_labels,
    img_to_signals_maps,
    signals_to_img_labels,
    signals_to_img_maps,
)
from brainxr.regions.spheres import Spheres, extract_spheres, sphere_adjacency, sphere_support, spheres_to_volume
from brainxr.regions.whole_brain import stream_signals, whole_brain_signals

# RegionExtractor builds on the maskers, which build on this package: imported on first use
_REGION_EXTRACTION = ("RegionExtractor", "connected_label_regions", "connected_regions")


def __getattr__(name):
    if name in _REGION_EXTRACTION:
        from brainxr.regions import region_extractor

        return getattr(region_extractor, name)
    raise AttributeError(f"module 'brainxr.regions' has no attribute {name!r}")


__all__ = [
    "RegionExtractor",
    "connected_label_regions",
    "connected_regions",
    "STRATEGIES",
    "LabelsAtlas",
    "MapsAtlas",
    "Spheres",
    "extract",
    "extract_cohort",
    "extract_labels",
    "extract_maps",
    "img_to_signals_labels",
    "img_to_signals_maps",
    "extract_spheres",
    "labels_to_volume",
    "load_labels_atlas",
    "load_maps_atlas",
    "look_up_table",
    "maps_to_volume",
    "signals_to_img_labels",
    "signals_to_img_maps",
    "sphere_adjacency",
    "sphere_support",
    "spheres_to_volume",
    "stream_signals",
    "whole_brain_signals",
]
