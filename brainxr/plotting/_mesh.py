"""A light triangle mesh of the brain surface, from a brain mask.

Marching cubes (scikit-image) on the smoothed mask, sampled every few
millimetres so that the mesh stays small enough to embed in an HTML page,
then Taubin-smoothed (shrink-free Laplacian smoothing) to hide the voxel
steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy import ndimage

from brainxr.plotting._inputs import Volume, axis_aligned, voxel_to_world

#: spacing in mm of the marching-cubes samples (sets the mesh size)
MESH_SPACING_MM = 5.0


@dataclass(frozen=True)
class Mesh:
    """Triangles in world coordinates.

    Attributes
    ----------
    vertices : numpy.ndarray ``(n_vertices, 3)`` float32, mm
    faces : numpy.ndarray ``(n_faces, 3)`` int32 vertex indices
    """

    vertices: np.ndarray
    faces: np.ndarray


def _vertex_adjacency(faces: np.ndarray, n_vertices: int) -> scipy.sparse.csr_matrix:
    """Row-normalised vertex adjacency: averaging over neighbours."""
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    adjacency = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices)).tocsr()
    adjacency.data[:] = 1.0
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    degree[degree == 0] = 1.0
    return scipy.sparse.diags(1.0 / degree) @ adjacency


def taubin_smooth(vertices: np.ndarray, faces: np.ndarray, iterations: int = 10, lam: float = 0.5,
                  mu: float = -0.53) -> np.ndarray:
    """Taubin's lambda/mu smoothing: removes noise without shrinking the surface."""
    average = _vertex_adjacency(faces, len(vertices))
    smoothed = vertices.astype(np.float64)
    for _ in range(iterations):
        smoothed = smoothed + lam * (average @ smoothed - smoothed)
        smoothed = smoothed + mu * (average @ smoothed - smoothed)
    return smoothed


def brain_surface_mesh(mask: Volume, spacing_mm: float = MESH_SPACING_MM) -> Mesh:
    """The outer surface of a brain mask as a small smooth mesh.

    Parameters
    ----------
    mask : Volume
        Binary brain mask.
    spacing_mm : float
        Sampling step of marching cubes, in mm: larger is smaller and coarser.

    Returns
    -------
    Mesh
    """
    from skimage.measure import marching_cubes

    mask = axis_aligned(mask, interpolation="nearest")
    voxel_size = np.abs(np.diag(mask.affine)[:3])
    inside = (mask.data > 0.5).astype(np.float32)
    # close small holes and round off voxel corners before sampling
    smooth = ndimage.gaussian_filter(inside, sigma=2.0 / voxel_size)
    step = max(1, int(round(spacing_mm / voxel_size.min())))
    padded = np.pad(smooth, step, mode="constant")
    vertices, faces, _, _ = marching_cubes(padded, level=0.5, step_size=step, allow_degenerate=False)
    vertices = taubin_smooth(vertices - step, faces)
    return Mesh(voxel_to_world(mask.affine, vertices).astype(np.float32), faces.astype(np.int32))


_MESHES: dict = {}


def cached_brain_surface_mesh(mask: Volume) -> Mesh:
    """:func:`brain_surface_mesh`, computed once per mask (content and grid)."""
    key = mask.content_key()
    if key not in _MESHES:
        if len(_MESHES) > 4:
            _MESHES.clear()
        _MESHES[key] = brain_surface_mesh(mask)
    return _MESHES[key]
