"""Glass-brain outlines drawn from a brain mask.

nilearn draws hand-made schematics; brainxr derives them from a mask, so the
outlines always match the space of the data: the template's mask by default,
or the data's own mask. For each view the mask is projected along the view
axis; the silhouette is the outline, and iso-lines of the normalised
thickness of the projected mask (smoothed) trace the inner structure (the
midline fissure, the temporal lobes, the cerebellum) for a glass-brain look.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import contourpy
import numpy as np
from matplotlib.collections import LineCollection
from scipy import ndimage

from brainxr.plotting._inputs import Volume, axis_aligned

#: thickness (fraction of the thickest column) where the silhouette is drawn
OUTLINE_LEVEL = 0.1
#: thickness levels of the inner iso-lines
INNER_LEVELS = (0.55, 0.8)
#: ``gid`` of the outline collections (the edges of a graph are line collections too)
GLASS_BRAIN_GID = "glass_brain"
#: world axis projected away for each view, and the two axes that stay
VIEW_AXES = {"x": (0, (1, 2)), "l": (0, (1, 2)), "r": (0, (1, 2)), "y": (1, (0, 2)), "z": (2, (0, 1))}


@dataclass(frozen=True)
class Projection:
    """One view of the mask: its thickness map on a 2D world grid.

    Attributes
    ----------
    thickness : numpy.ndarray
        ``(n_rows, n_cols)``: smoothed fraction of in-mask voxels along the
        projection axis, rows along the vertical world axis (bottom first).
    extent : tuple
        ``(left, right, bottom, top)`` world extent in mm, as for ``imshow``
        with ``origin='lower'``.
    """

    thickness: np.ndarray
    extent: tuple

    def grid(self):
        """World coordinates ``(X, Y)`` of the thickness samples."""
        left, right, bottom, top = self.extent
        rows, cols = self.thickness.shape
        return np.meshgrid(np.linspace(left, right, cols), np.linspace(bottom, top, rows))

    def bounds(self) -> tuple:
        """``(xmin, xmax, ymin, ymax)`` of the silhouette with a small margin."""
        inside = self.thickness > OUTLINE_LEVEL * self.thickness.max()
        X, Y = self.grid()
        if not inside.any():
            left, right, bottom, top = self.extent
            return left, right, bottom, top
        xs, ys = X[inside], Y[inside]
        margin_x = 0.025 * (xs.max() - xs.min()) + 1
        margin_y = 0.025 * (ys.max() - ys.min()) + 1
        return xs.min() - margin_x, xs.max() + margin_x, ys.min() - margin_y, ys.max() + margin_y

    @cached_property
    def lines(self) -> tuple:
        """``(outline, inner)``: the silhouette's and the inner iso-lines'
        segments, each a list of ``(n, 2)`` world coordinates.

        Traced once per projection (projections are cached per mask) with
        contourpy, as ``Axes.contour`` traces them, so that every figure on
        the same mask only draws them.
        """
        peak = self.thickness.max()
        if peak <= 0:
            return [], []
        X, Y = self.grid()
        tracer = contourpy.contour_generator(X, Y, self.thickness, name="mpl2014",
                                             line_type=contourpy.LineType.SeparateCode)
        # (points, codes) per level; a closed line repeats its first point
        inner = [points for level in INNER_LEVELS for points in tracer.lines(level * peak)[0]]
        return tracer.lines(OUTLINE_LEVEL * peak)[0], inner


_PROJECTIONS: dict = {}


def mask_projections(mask: Volume) -> dict:
    """The :class:`Projection` of a binary mask for each view ('x', 'y', 'z', 'l', 'r').

    Results are cached per mask (content and grid), so repeated plots on the
    same template pay once.
    """
    key = mask.content_key()
    if key not in _PROJECTIONS:
        if len(_PROJECTIONS) > 8:
            _PROJECTIONS.clear()
        _PROJECTIONS[key] = _compute_projections(axis_aligned(mask, interpolation="nearest"))
    return _PROJECTIONS[key]


def _compute_projections(mask: Volume) -> dict:
    inside = mask.data > 0.5
    steps = np.diag(mask.affine)[:3]
    midline = int(np.clip(np.round(np.linalg.solve(mask.affine, [0, 0, 0, 1])[0]), 0, inside.shape[0]))
    bounds = mask.bounds()
    projections = {}
    for view, (axis, (horizontal, vertical)) in VIEW_AXES.items():
        selection = inside
        if view == "l" and 0 < midline:
            selection = inside[:midline]
        elif view == "r" and midline < inside.shape[0]:
            selection = inside[midline:]
        thickness = selection.sum(axis=axis).astype(float)
        if thickness.max() > 0:
            thickness /= thickness.max()
        # sigma of ~3 mm whatever the grid, for smooth iso-lines
        sigma = [3.0 / abs(steps[horizontal]), 3.0 / abs(steps[vertical])]
        thickness = ndimage.gaussian_filter(thickness, sigma=sigma)
        # rows = vertical axis, first row at the bottom
        projections[view] = Projection(
            thickness.T, (*bounds[horizontal], *bounds[vertical])
        )
    return projections


def draw_glass_brain(ax, projection: Projection, black_bg: bool = False, alpha: float = 0.7) -> tuple:
    """Draw the outline and inner iso-lines of one view on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    projection : Projection
    black_bg : bool
        Light lines on a dark background.
    alpha : float
        Opacity of the lines.

    Returns
    -------
    tuple
        ``(xmin, xmax, ymin, ymax)`` bounds of the drawing, for axis limits.
    """
    outline, inner = projection.lines
    for segments, color, width in ((outline, "0.85" if black_bg else "0.25", 1.6),
                                   (inner, "0.7" if black_bg else "0.5", 0.8)):
        if segments:
            ax.add_collection(LineCollection(segments, colors=[color], linewidths=width, alpha=alpha, zorder=2,
                                             gid=GLASS_BRAIN_GID),
                              autolim=False)
    return projection.bounds()
