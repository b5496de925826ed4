"""The names of brainxr's dimensions and geometry coordinates.

Every labeled object follows one contract (docs/architecture.md, "Data
model"); these constants are its names. This module is the bottom of the
package: it imports nothing from brainxr.
"""

from __future__ import annotations

#: voxel axes of a volume image, in NIfTI array order
SPATIAL_DIMS = ("i", "j", "k")
#: volumes of a run (coordinate in seconds, attribute ``t_r``)
TIME_DIM = "time"
#: voxels of a masked ``(time, voxel)`` table (coords ``i, j, k, x, y, z``)
VOXEL_DIM = "voxel"
#: regions of an atlas or a set of seeds
REGION_DIM = "region"
#: maps of a probabilistic atlas or a decomposition
MAP_DIM = "map"
#: runs of a cohort
RUN_DIM = "run"
#: world coordinates (mm) of voxels and regions
WORLD_COORDS = ("x", "y", "z")
#: the scalar coordinate holding a grid (attrs ``affine`` and ``shape``)
GRID_COORD = "grid"


def paired(name: str) -> str:
    """The name of the second copy of a dim or coordinate in a square matrix.

    A connectivity matrix has dims ``(region, region_)``: each coordinate of
    the first dim is repeated, suffixed with ``_``, on the second.

    Examples
    --------
    >>> paired("region")
    'region_'
    """
    return f"{name}_"
