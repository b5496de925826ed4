"""Display objects: a row of brain views sharing one figure.

A display is a row of panels, each a matplotlib Axes showing one view of the
brain in world coordinates (mm): a cut through a volume (:class:`SlicerDisplay`,
what ``plot_stat_map``/``plot_anat`` return) or a projection through the whole
brain drawn over glass-brain outlines (:class:`ProjectorDisplay`, what
``plot_connectome``/``plot_markers``/``plot_glass_brain`` return). Both offer
nilearn's display methods: ``add_overlay``, ``add_contours``, ``add_markers``,
``title``, ``annotate``, ``savefig`` and ``close``; projectors add
``add_graph``, slicers ``draw_cross``.

Views: ``'x'`` sagittal (y horizontal, z vertical), ``'y'`` coronal (x, z),
``'z'`` axial (x, y), ``'l'``/``'r'`` sagittal views of the left/right
hemisphere only (the left one seen from the left).
"""

from __future__ import annotations

import numbers
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.collections import LineCollection
from matplotlib.patches import FancyArrow
from matplotlib.transforms import Bbox

from brainxr.plotting._graph import edge_color_range, graph_edges
from brainxr.plotting._inputs import Volume, as_node_coords, as_volume, axis_aligned
from brainxr.plotting.glass_brain import VIEW_AXES, draw_glass_brain, mask_projections

SLICER_MODES = {"ortho": "xyz", "x": "x", "y": "y", "z": "z", "xz": "xz", "yz": "yz", "yx": "xy"}
PROJECTOR_MODES = {
    **SLICER_MODES,
    "l": "l", "r": "r", "lr": "lr", "lzr": "lzr", "lyr": "lyr", "lzry": "lzry", "lyrz": "lyrz",
}
# figure size (inches) of one panel, as nilearn's displays
_PANEL_SIZE = {"ortho": (2.2, 3.5), "x": (2.6, 3.0), "y": (2.2, 3.0), "z": (2.2, 3.4), "l": (2.6, 3.0), "r": (2.6, 2.8)}


#: Line2D property names (nilearn's ``edge_kwargs``) -> LineCollection's
_COLLECTION_NAMES = {"color": "colors", "c": "colors", "linewidth": "linewidths", "lw": "linewidths",
                     "linestyle": "linestyles", "ls": "linestyles", "solid_capstyle": "capstyle",
                     "solid_joinstyle": "joinstyle", "antialiased": "antialiaseds", "aa": "antialiaseds"}


def coords_3d_to_2d(coords: np.ndarray, direction: str) -> np.ndarray:
    """World coordinates ``(n, 3)`` to the 2D coordinates of a view ``(n, 2)``."""
    _, (horizontal, vertical) = VIEW_AXES[direction]
    coords = np.atleast_2d(coords)
    return coords[:, [horizontal, vertical]]


def threshold_cmap(cmap, norm: Normalize, threshold: float | None, color=(0.5, 0.5, 0.5, 1.0)):
    """``cmap`` with the values of absolute value below ``threshold`` painted ``color``."""
    cmap = plt.get_cmap(cmap)
    values = np.linspace(norm.vmin, norm.vmax, cmap.N)
    colors = cmap(norm(values))
    if threshold is not None:
        colors[np.abs(values) < threshold] = color
    return ListedColormap(colors, name=f"{cmap.name}_thresholded")


def colorbar_ticks(vmin: float, vmax: float, threshold: float | None = None, n_ticks: int = 5) -> np.ndarray:
    """Evenly spaced ticks, with the ticks nearest to +/- ``threshold`` moved onto it (as nilearn)."""
    ticks = np.linspace(vmin, vmax, n_ticks)
    if threshold is not None and threshold > 1e-6:
        for edge in (threshold, -threshold):
            if vmin < edge < vmax:
                ticks[np.argmin(np.abs(ticks - edge))] = edge
    return np.unique(ticks)


class DisplayAxes:
    """One panel of a display: a matplotlib Axes showing one view.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    direction : {'x', 'y', 'z', 'l', 'r'}
    coord : float or None
        World position of the cut along ``direction``; ``None`` for a
        projection through the whole volume.
    plot_abs : bool
        Projections only: show the maximum of the absolute value (``True``)
        or the signed value of largest magnitude.
    """

    def __init__(self, ax, direction: str, coord: float | None = None, plot_abs: bool = True):
        if direction not in VIEW_AXES:
            raise ValueError(f"direction: expected one of {sorted(VIEW_AXES)}, got {direction!r}")
        self.ax = ax
        self.direction = direction
        self.coord = coord
        self.plot_abs = plot_abs
        self._object_bounds: list = []
        self.cmap = None
        self.norm = None

    @property
    def is_projection(self) -> bool:
        return self.coord is None

    def add_object_bounds(self, bounds) -> None:
        """Grow the axis limits to show ``(xmin, xmax, ymin, ymax)``."""
        self._object_bounds.append(tuple(float(b) for b in bounds))
        xmin, xmax, ymin, ymax = self.get_object_bounds()
        if self.direction == "l":
            xmin, xmax = xmax, xmin  # the left hemisphere is seen from the left
        self.ax.set_xlim(xmin, xmax)
        self.ax.set_ylim(ymin, ymax)

    def get_object_bounds(self) -> tuple:
        """Union of the bounds of what was drawn, ``(xmin, xmax, ymin, ymax)``."""
        if not self._object_bounds:
            return -0.01, 0.01, -0.01, 0.01
        bounds = np.array(self._object_bounds)
        return bounds[:, 0].min(), bounds[:, 1].max(), bounds[:, 2].min(), bounds[:, 3].max()

    def transform_to_2d(self, volume: Volume):
        """The 2D view of an axis-aligned 3D volume.

        Returns
        -------
        data_2d : numpy.ndarray or None
            Rows along the vertical axis (bottom first); ``None`` when the cut
            falls outside the volume.
        extent : tuple
            ``(left, right, bottom, top)`` in mm.
        """
        axis, (horizontal, vertical) = VIEW_AXES[self.direction]
        data = volume.data
        bounds = volume.bounds()
        extent = (*bounds[horizontal], *bounds[vertical])
        if self.is_projection:
            if self.direction in "lr":
                midline = int(np.linalg.solve(volume.affine, [0, 0, 0, 1])[0])
                midline = int(np.clip(midline, 0, data.shape[0]))
                half = data[:midline] if self.direction == "l" else data[midline:]
                data = half if half.shape[0] else data
            if self.plot_abs:
                flat = np.abs(data).max(axis=axis)
            else:
                peak = np.expand_dims(np.abs(data).argmax(axis=axis), axis)
                flat = np.take_along_axis(data, peak, axis=axis).squeeze(axis)
        else:
            index = int(np.round((self.coord - volume.affine[axis, 3]) / volume.affine[axis, axis]))
            if not 0 <= index < data.shape[axis]:
                return None, extent
            flat = np.take(data, index, axis=axis)
        return np.ma.asarray(flat).T, extent

    def draw_2d(self, data_2d, extent, kind: str = "imshow", world_bounds=None, **kwargs):
        """Draw 2D data on the panel with ``imshow``, ``contour`` or ``contourf``.

        ``world_bounds`` (3D ``((xmin, xmax), ...)``) limits the panel to what
        matters (e.g. the non-zero part); default the whole ``extent``.
        """
        if kind == "imshow":
            kwargs.setdefault("interpolation", "nearest")
            artist = self.ax.imshow(data_2d, origin="lower", extent=extent, **kwargs)
        else:
            rows, cols = data_2d.shape
            X, Y = np.meshgrid(np.linspace(extent[0], extent[1], cols), np.linspace(extent[2], extent[3], rows))
            artist = getattr(self.ax, kind)(X, Y, data_2d, **kwargs)
        if world_bounds is None:
            self.add_object_bounds(extent)
        else:
            _, (horizontal, vertical) = VIEW_AXES[self.direction]
            self.add_object_bounds((*world_bounds[horizontal], *world_bounds[vertical]))
        return artist

    def in_view(self, coords: np.ndarray, tolerance: float = 2.0) -> np.ndarray:
        """Which points show on this panel: hemisphere for 'l'/'r', near the cut for slices."""
        keep = np.ones(len(coords), dtype=bool)
        if self.direction == "r":
            keep &= coords[:, 0] >= 0
        elif self.direction == "l":
            keep &= coords[:, 0] <= 0
        if not self.is_projection:
            axis = VIEW_AXES[self.direction][0]
            keep &= np.abs(coords[:, axis] - self.coord) <= tolerance
        return keep

    def add_markers(self, coords: np.ndarray, color, size, **kwargs) -> None:
        """Scatter points given in world coordinates (only those in view)."""
        keep = self.in_view(coords)
        color = _select(color, keep)
        size = _select(size, keep)
        xdata, ydata = coords_3d_to_2d(coords[keep], self.direction).T
        kwargs.setdefault("marker", "o")
        kwargs.setdefault("zorder", 1000)
        self.ax.scatter(xdata, ydata, s=size, c=color, **kwargs)

    def add_lines(self, line_coords: np.ndarray, line_values: np.ndarray, cmap, norm: Normalize,
                  directed: bool = False, **kwargs) -> None:
        """Draw edges ``(n, 2, 3)`` coloured by value, wider and on top when stronger.

        nilearn draws one ``Line2D`` per edge with ``zorder`` 10 to 20 by
        strength; here the undirected edges are one ``LineCollection``
        (zorder 10) whose segments are ordered by strength: the same picture
        (segments, colours, widths, caps, stacking) for a fraction of the
        cost (a 32-region graph: 1,500 lines, ~1 s). ``kwargs`` take
        ``Line2D``'s names (``color``, ``linewidth``, ``linestyle``, ...) and
        override the computed style, as nilearn's do.
        """
        self.cmap, self.norm = cmap, norm
        if self.direction in "lr":
            x_start, x_end = line_coords[:, 0, 0], line_coords[:, 1, 0]
            if self.direction == "r":
                keep = (x_start >= 0) & (x_end >= 0)
            else:
                keep = (x_start < 0) & (x_end < 0)
            line_coords, line_values = line_coords[keep], line_values[keep]
        # colours and strengths of all the edges at once: matplotlib's per-value calls cost ~0.2 ms each
        line_values = np.asarray(line_values)
        colors = plt.cm.ScalarMappable(norm=norm, cmap=cmap).to_rgba(line_values)
        strength = Normalize(vmin=0, vmax=max(abs(norm.vmin), abs(norm.vmax)))
        strengths = np.ma.getdata(strength(np.abs(line_values)))
        segments = coords_3d_to_2d(np.asarray(line_coords).reshape(-1, 3), self.direction).reshape(-1, 2, 2)
        if directed:
            for ((x0, y0), (x1, y1)), color, relative in zip(segments, colors, strengths):
                relative = float(relative)
                style = {"color": tuple(color), "linewidth": 1 + 2 * relative, "zorder": 10 + 10 * relative}
                style.update(kwargs)
                width = style.pop("linewidth")
                self.ax.add_patch(FancyArrow(x0, y0, x1 - x0, y1 - y0, length_includes_head=True,
                                             width=width, head_width=3 * width, **style))
            return
        if not len(segments):
            return
        order = np.argsort(strengths, kind="stable")  # weaker first: stronger edges drawn over them
        style = {
            "colors": colors[order],
            "linewidths": 1 + 2 * strengths[order],
            "zorder": 10,
            # Line2D's caps and joins (a collection's default caps are butt)
            "capstyle": plt.rcParams["lines.solid_capstyle"],
            "joinstyle": plt.rcParams["lines.solid_joinstyle"],
        }
        style.update({_COLLECTION_NAMES.get(name, name): value for name, value in kwargs.items()})
        self.ax.add_collection(LineCollection(segments[order], **style))

    def draw_left_right(self, size, bg_color, **kwargs) -> None:
        """Write 'L' and 'R' on coronal and axial views."""
        if self.direction in "xlr":
            return
        box = {"boxstyle": "square,pad=0", "ec": bg_color, "fc": bg_color, "alpha": 1}
        self.ax.text(0.1, 0.95, "L", transform=self.ax.transAxes, ha="left", va="top", size=size, bbox=box, **kwargs)
        self.ax.text(0.9, 0.95, "R", transform=self.ax.transAxes, ha="right", va="top", size=size, bbox=box, **kwargs)

    def draw_position(self, size, bg_color, decimals=0, **kwargs) -> None:
        """Write the cut position (``x=12``) in the lower left corner of a cut."""
        if self.is_projection:
            return
        text = f"{self.direction}={self.coord:.{decimals}f}" if decimals else f"{self.direction}={int(self.coord)}"
        box = {"boxstyle": "square,pad=0", "ec": bg_color, "fc": bg_color, "alpha": 1}
        self.ax.text(0, 0, text, transform=self.ax.transAxes, ha="left", va="bottom", size=size, bbox=box, **kwargs)


def _select(values, keep: np.ndarray):
    """Subset per-point values (colors, sizes); a scalar or a single color passes through."""
    if values is None or isinstance(values, (str, numbers.Number)):
        return values
    if isinstance(values, tuple) and len(values) in (3, 4) and all(isinstance(v, numbers.Number) for v in values):
        return values  # one RGB(A) color
    array = np.asarray(values)
    if array.ndim >= 1 and len(array) == len(keep):
        return array[keep]
    return values


class BaseDisplay:
    """A row of brain views in one figure.

    Use :func:`make_display` or the plotting functions rather than building
    one directly.

    Parameters
    ----------
    panels : list of (direction, coord)
        One view each; ``coord`` is ``None`` for projections.
    frame_axes : matplotlib.axes.Axes
        The area of the figure the display occupies (turned off).
    black_bg : bool
        Dark figure background.
    brain_color : color
        Colour for thresholded parts of the colorbar.

    Attributes
    ----------
    axes : dict
        :class:`DisplayAxes` by direction (by cut position for several cuts
        along one direction).
    cut_coords : list
        Positions of the cuts (``None`` for projections).
    frame_axes : matplotlib.axes.Axes
    """

    def __init__(self, panels, frame_axes, black_bg: bool = False, brain_color=(0.5, 0.5, 0.5), plot_abs: bool = True):
        self.frame_axes = frame_axes
        self.figure = frame_axes.figure
        frame_axes.set_zorder(1)
        frame_axes.axis("off")
        box = frame_axes.get_position()
        self.rect = (box.x0, box.y0, box.x1, box.y1)
        self._black_bg = black_bg
        self._brain_color = brain_color
        self._colorbar = False
        self._colorbar_width = 0.05 * box.width
        self._colorbar_margin = {"left": 0.25 * box.width, "right": 0.02 * box.width,
                                 "top": 0.05 * box.height, "bottom": 0.05 * box.height}
        self._cbar = None
        self._colorbar_ax = None
        self.cut_coords = [coord for _, coord in panels]
        directions = [direction for direction, _ in panels]
        unique = len(set(directions)) == len(directions)
        facecolor = "k" if black_bg else "w"
        self.axes = {}
        for index, (direction, coord) in enumerate(panels):
            x0, y0, x1, y1 = self.rect
            ax = self.figure.add_axes([x0 + index * (x1 - x0) / len(panels), y0, (x1 - x0) / len(panels), y1 - y0])
            ax.set_facecolor(facecolor)
            ax.axis("off")
            ax.set_aspect("equal", adjustable="box")
            ax.set_axes_locator(self._locator)
            self.axes[direction if unique else coord] = DisplayAxes(ax, direction, coord, plot_abs=plot_abs)

    @property
    def black_bg(self) -> bool:
        return self._black_bg

    @property
    def brain_color(self):
        return self._brain_color

    def _locator(self, axes, renderer=None):
        """Give each panel a width proportional to the extent of what it shows."""
        x0, y0, x1, y1 = self.rect
        if self._colorbar:
            n_axes = len(self.axes)
            x1 -= (self._colorbar_width + self._colorbar_margin["left"] + self._colorbar_margin["right"]) / n_axes
        widths = {}
        for display_ax in self.axes.values():
            xmin, xmax, _, _ = display_ax.get_object_bounds()
            widths[display_ax.ax] = max(xmax - xmin, 1e-6)
        total = sum(widths.values())
        left = x0
        for ax, width in widths.items():
            width = width / total * (x1 - x0)
            if ax is axes:
                return Bbox([[left, y0], [left + width, y1]])
            left += width
        return Bbox([[x0, y0], [x1, y1]])

    # drawing volumes -------------------------------------------------

    @staticmethod
    def _tight_bounds(volume: Volume, keep: np.ndarray):
        """World bounds of the voxels in ``keep`` (the whole volume when none)."""
        if not keep.any():
            return volume.bounds()
        low = [np.flatnonzero(keep.any(axis=tuple(a for a in range(3) if a != axis)))[0] for axis in range(3)]
        high = [np.flatnonzero(keep.any(axis=tuple(a for a in range(3) if a != axis)))[-1] for axis in range(3)]
        first = volume.affine[:3, :3] @ low + volume.affine[:3, 3]
        last = volume.affine[:3, :3] @ high + volume.affine[:3, 3]
        return tuple((min(a, b), max(a, b)) for a, b in zip(first, last))

    def _panels_2d(self, volume: Volume):
        return [(display_ax, *display_ax.transform_to_2d(volume)) for display_ax in self.axes.values()]

    def add_overlay(self, img, threshold=1e-6, colorbar: bool = False, cmap=None, vmin=None, vmax=None,
                    cbar_vmin=None, cbar_vmax=None, transparency=None, interpolation="nearest", **kwargs):
        """Show a 3D map in every view.

        Parameters
        ----------
        img : 3D image (nibabel image, path or brainxr DataArray)
        threshold : float or None
            Values of absolute value at or below it are transparent.
        colorbar : bool
            Add a colorbar (one per display).
        cmap : colormap, optional
        vmin, vmax : float, optional
            Colour scaling; default the range of the shown data.
        cbar_vmin, cbar_vmax : float, optional
            Range of the colorbar, if different.
        transparency : float, optional
            Opacity in [0, 1].
        **kwargs
            Passed to :func:`matplotlib.pyplot.imshow`.
        """
        if threshold is not None and threshold < 0:
            raise ValueError(f"threshold: must be non-negative, got {threshold}")
        if colorbar and self._colorbar:
            raise ValueError("This figure already has an overlay with a colorbar.")
        volume = axis_aligned(as_volume(img, name="img"))
        data = np.nan_to_num(np.asarray(volume.data, dtype=float))
        volume = Volume(data, volume.affine)
        views = self._panels_2d(volume)
        shown = [view[1] for view in views if view[1] is not None]
        world_bounds = None if threshold is None else self._tight_bounds(volume, np.abs(data) > threshold)
        if not shown:
            return []
        if vmin is None:
            vmin = float(min(np.ma.min(d) for d in shown))
        if vmax is None:
            vmax = float(max(np.ma.max(d) for d in shown))
        norm = Normalize(vmin=vmin, vmax=vmax)
        images = []
        for display_ax, data_2d, extent in views:
            if data_2d is None:
                continue
            if threshold is not None:
                data_2d = np.ma.masked_where(np.abs(data_2d) <= threshold, data_2d)
            images.append(display_ax.draw_2d(data_2d, extent, world_bounds=world_bounds, cmap=cmap, norm=norm,
                                             alpha=transparency,
                                             interpolation=interpolation, **kwargs))
        if colorbar and images:
            self._colorbar = True
            self._show_colorbar(images[0].cmap, norm, cbar_vmin, cbar_vmax, threshold)
        return images

    def add_contours(self, img, threshold=1e-6, filled: bool = False, **kwargs) -> None:
        """Draw iso-contours of a 3D map in every view.

        Parameters
        ----------
        img : 3D image
        threshold : float
            Only for ``filled``: the lower bound of the filled region when
            ``levels`` is not given.
        filled : bool
            Fill between ``levels[0]`` and the maximum.
        **kwargs
            ``levels``, ``colors``, ``linewidths``, ``transparency`` (opacity),
            ... passed to :func:`matplotlib.pyplot.contour`/``contourf``.
        """
        volume = axis_aligned(as_volume(img, name="img"))
        data = np.nan_to_num(np.asarray(volume.data, dtype=float))
        transparency = kwargs.pop("transparency", None)
        if transparency is not None:
            kwargs["alpha"] = transparency
        levels = kwargs.pop("levels", None)
        volume = Volume(data, volume.affine)
        low_level = 0.9 * np.min(np.abs(levels)) if levels is not None else 1e-6
        world_bounds = self._tight_bounds(volume, np.abs(data) > low_level)
        for display_ax, data_2d, extent in self._panels_2d(volume):
            if data_2d is None:
                continue
            data_2d = np.ma.filled(data_2d, 0.0)
            lowest, highest = data_2d.min(), data_2d.max()
            if filled:
                low = levels[0] if levels is not None else threshold
                if highest <= low:
                    continue
                fill_kwargs = {k: v for k, v in kwargs.items() if k not in ("linewidths", "linestyles")}
                display_ax.draw_2d(data_2d, extent, kind="contourf", world_bounds=world_bounds,
                                   levels=[low, highest + 1e-12], **fill_kwargs)
                display_ax.draw_2d(data_2d, extent, kind="contour", world_bounds=world_bounds, levels=[low], **kwargs)
            else:
                shown = levels if levels is not None else [0.5 * (lowest + highest)]
                if not any(lowest < level < highest for level in np.atleast_1d(shown)):
                    continue
                display_ax.draw_2d(data_2d, extent, kind="contour", world_bounds=world_bounds, levels=shown, **kwargs)

    def add_markers(self, marker_coords, marker_color="r", marker_size=30, **kwargs) -> None:
        """Add points given in world coordinates (mm) to every view.

        On cuts, only points within 2 mm of the cut show (nilearn's rule); on
        hemisphere views, only points of that hemisphere (x = 0 in both).
        """
        coords = as_node_coords(marker_coords, name="marker_coords")
        for display_ax in self.axes.values():
            display_ax.add_markers(coords, marker_color, marker_size, **kwargs)

    # decorations -------------------------------------------------------

    def _show_colorbar(self, cmap, norm, cbar_vmin=None, cbar_vmax=None, threshold=None):
        cbar_vmin = norm.vmin if cbar_vmin is None else cbar_vmin
        cbar_vmax = norm.vmax if cbar_vmax is None else cbar_vmax
        if cbar_vmin == cbar_vmax:
            return
        x0, y0, x1, y1 = self.rect
        width = self._colorbar_width / len(self.axes)
        margin = self._colorbar_margin["right"] / len(self.axes)
        self._colorbar_ax = self.figure.add_axes(
            [x1 - (width + margin), y0 + self._colorbar_margin["top"], width,
             (y1 - y0) - (self._colorbar_margin["top"] + self._colorbar_margin["bottom"])]
        )
        shown = Normalize(vmin=cbar_vmin, vmax=cbar_vmax)
        mappable = plt.cm.ScalarMappable(norm=shown, cmap=threshold_cmap(cmap, shown, threshold, (*self._brain_color[:3], 0.0)))
        ticks = colorbar_ticks(cbar_vmin, cbar_vmax, threshold)
        self._cbar = self.figure.colorbar(mappable, cax=self._colorbar_ax, ticks=ticks, format="%.2g")
        self._cbar.ax.set_facecolor(self._brain_color)
        self._colorbar_ax.yaxis.tick_left()
        text_color = "w" if self._black_bg else "k"
        for tick in self._colorbar_ax.yaxis.get_ticklabels():
            tick.set_color(text_color)
        self._colorbar_ax.yaxis.set_tick_params(width=0)
        self._cbar.outline.set_edgecolor(text_color)

    def title(self, text, x=0.01, y=0.99, size=15, color=None, bgcolor=None, alpha=1, **kwargs) -> None:
        """Write a title in the top left corner of the display."""
        color = ("k" if self._black_bg else "w") if color is None else color
        bgcolor = ("w" if self._black_bg else "k") if bgcolor is None else bgcolor
        first = next(iter(self.axes.values())).ax
        first.text(x, y, text, transform=self.frame_axes.transAxes, ha="left", va="top", size=size, color=color,
                   zorder=1000, bbox={"boxstyle": "square,pad=.3", "ec": bgcolor, "fc": bgcolor, "alpha": alpha},
                   **kwargs)
        first.set_zorder(1000)

    def annotate(self, left_right: bool = True, positions: bool = True, size: int = 12, decimals: int = 0, **kwargs) -> None:
        """Write 'L'/'R' on coronal and axial views and the position of each cut."""
        kwargs.setdefault("color", "w" if self._black_bg else "k")
        bg_color = "k" if self._black_bg else "w"
        for display_ax in self.axes.values():
            if left_right:
                display_ax.draw_left_right(size=size, bg_color=bg_color, **kwargs)
            if positions:
                display_ax.draw_position(size=size, bg_color=bg_color, decimals=decimals, **kwargs)

    def savefig(self, filename, dpi=None, **kwargs) -> None:
        """Save the figure (the format follows the extension: .png, .pdf, .svg, ...)."""
        if filename is None:
            raise ValueError("filename: you must provide an output file name to save the figure.")
        path = Path(filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        color = "k" if self._black_bg else "w"
        self.figure.savefig(path, dpi=dpi, facecolor=color, edgecolor=color, **kwargs)

    def close(self) -> None:
        """Close the figure (frees its memory)."""
        plt.close(self.figure)


class SlicerDisplay(BaseDisplay):
    """Cuts through volumes (``plot_stat_map``, ``plot_anat``, ``plot_prob_atlas``)."""

    def draw_cross(self, cut_coords=None, **kwargs) -> None:
        """Draw lines through the cut point ``(x, y, z)`` on orthogonal views."""
        if cut_coords is None:
            cut_coords = self.cut_coords
        position = {display_ax.direction: coord for display_ax, coord in zip(self.axes.values(), cut_coords)}
        if len(position) != len(self.axes):
            return  # several cuts along one direction: no cross
        kwargs.setdefault("color", ".8" if self._black_bg else "k")
        kwargs.setdefault("linewidth", 0.8)
        for direction, display_ax in self.axes.items():
            horizontal_world, vertical_world = "xyz"[VIEW_AXES[direction][1][0]], "xyz"[VIEW_AXES[direction][1][1]]
            if horizontal_world in position:
                display_ax.ax.axvline(position[horizontal_world], ymin=0.05, ymax=0.95, **kwargs)
            if vertical_world in position:
                display_ax.ax.axhline(position[vertical_world], **kwargs)


class ProjectorDisplay(BaseDisplay):
    """Projections through the whole brain over glass-brain outlines (``plot_connectome``)."""

    def __init__(self, panels, frame_axes, black_bg=False, brain_color=(0.5, 0.5, 0.5), plot_abs=True,
                 brain_mask: Volume | None = None, alpha: float = 0.7):
        super().__init__(panels, frame_axes, black_bg=black_bg, brain_color=brain_color, plot_abs=plot_abs)
        if brain_mask is not None:
            projections = mask_projections(brain_mask)
            for display_ax in self.axes.values():
                display_ax.add_object_bounds(
                    draw_glass_brain(display_ax.ax, projections[display_ax.direction], black_bg=black_bg, alpha=alpha)
                )

    def add_graph(self, adjacency_matrix, node_coords, node_color="auto", node_size=50, edge_cmap="RdBu_r",
                  edge_vmin=None, edge_vmax=None, edge_threshold=None, edge_kwargs=None, node_kwargs=None,
                  colorbar: bool = False) -> None:
        """Draw a graph: nodes at ``node_coords``, edges coloured by weight.

        See :func:`brainxr.plotting.plot_connectome` for the parameters.
        """
        edge_kwargs = dict(edge_kwargs or {})
        node_kwargs = dict(node_kwargs or {})
        if "s" in node_kwargs:
            raise ValueError("node_kwargs: use 'node_size' and not node_kwargs['s'] to set node sizes.")
        if "c" in node_kwargs:
            raise ValueError("node_kwargs: use 'node_color' and not node_kwargs['c'] to set node colors.")
        edges = graph_edges(adjacency_matrix, node_coords, edge_threshold)
        coords = edges.node_coords
        if isinstance(node_color, str) and node_color == "auto":
            node_color = plt.cm.Set2(np.linspace(0, 1, len(coords)))
        elif isinstance(node_color, (list, np.ndarray)) and len(node_color) not in (1, len(coords)) \
                and not (len(node_color) in (3, 4) and all(isinstance(c, numbers.Number) for c in node_color)):
            raise ValueError(
                f"node_color: {len(node_color)} colors for {len(coords)} nodes; give one color or one per node"
            )
        norm = None
        for display_ax in self.axes.values():
            display_ax.add_markers(coords, node_color, node_size, **node_kwargs)
        if len(edges.values):
            vmin, vmax = edge_color_range(edges.values, edge_vmin, edge_vmax)
            norm = Normalize(vmin=vmin, vmax=vmax)
            cmap = plt.get_cmap(edge_cmap)
            for display_ax in self.axes.values():
                display_ax.add_lines(edges.line_coords, edges.values, cmap, norm, directed=not edges.symmetric,
                                     **edge_kwargs)
        if colorbar and norm is not None:
            self._colorbar = True
            self._show_colorbar(plt.get_cmap(edge_cmap), norm, threshold=edges.threshold)


def make_display(kind: str, display_mode: str = "ortho", cut_coords=None, figure=None, axes=None,
                 black_bg: bool = False, colorbar: bool = False, brain_mask: Volume | None = None,
                 alpha: float = 0.7, plot_abs: bool = True, brain_color=(0.5, 0.5, 0.5)):
    """Create a figure (or use the given one) and the display of the requested views.

    Parameters
    ----------
    kind : {'slicer', 'projector'}
    display_mode : str
        Slicers: 'ortho', 'x', 'y', 'z', 'xz', 'yz', 'yx'. Projectors also
        'l', 'r', 'lr', 'lzr', 'lyr', 'lzry', 'lyrz'.
    cut_coords : sequence of float, optional
        Slicers: the cut position for each view (mm); for one-direction
        modes, the list of cut positions.
    figure : matplotlib Figure, int, or (width, height), optional
    axes : matplotlib Axes or [left, bottom, width, height], optional
        The area to draw in.
    black_bg : bool
    colorbar : bool
        Leave room for a colorbar when creating the figure.
    brain_mask : Volume, optional
        Projectors: the mask whose outlines are drawn.
    """
    modes = SLICER_MODES if kind == "slicer" else PROJECTOR_MODES
    if display_mode not in modes:
        raise ValueError(f"display_mode: expected one of {sorted(modes)}, got {display_mode!r}")
    directions = modes[display_mode]
    if kind == "projector":
        panels = [(direction, None) for direction in directions]
    elif len(directions) == 1:
        panels = [(directions, float(coord)) for coord in cut_coords]
    else:
        panels = [(direction, float(coord)) for direction, coord in zip(directions, cut_coords)]
    if isinstance(axes, plt.Axes) and figure is None:
        figure = axes.figure
    if not isinstance(figure, plt.Figure):
        single = display_mode if display_mode in _PANEL_SIZE else "ortho"
        if kind == "slicer" and len(directions) == 1:
            single = {"x": "x", "y": "y", "z": "z"}[directions]
        width, height = _PANEL_SIZE[single]
        figsize = figure if isinstance(figure, (tuple, list)) else (width * len(panels) + (0.7 if colorbar else 0), height)
        figure = plt.figure(figsize=figsize, facecolor="k" if black_bg else "w")
    if isinstance(axes, plt.Axes):
        if axes.figure is not figure:
            raise ValueError("axes: the axes passed are not in the figure")
    else:
        axes = figure.add_axes(axes if axes is not None else [0.0, 0.0, 1.0, 1.0])
    if kind == "projector":
        return ProjectorDisplay(panels, axes, black_bg=black_bg, brain_color=brain_color, plot_abs=plot_abs,
                                brain_mask=brain_mask, alpha=alpha)
    return SlicerDisplay(panels, axes, black_bg=black_bg, brain_color=brain_color, plot_abs=plot_abs)


def save_if_needed(display, output_file):
    """Save and close when ``output_file`` is given (returning ``None``), as nilearn does."""
    if output_file is None:
        return display
    display.savefig(output_file)
    display.close()
    return None
