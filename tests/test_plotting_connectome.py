"""plot_connectome / plot_markers: edge thresholding and colour scaling, checked against nilearn."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.lines import Line2D
from scipy.stats import scoreatpercentile
from test_plotting_data import brain_mask, random_connectome  # noqa: F401 (fixture)

from brainxr.plotting import plot_connectome, plot_markers
from brainxr.plotting._graph import check_threshold, edge_color_range, graph_edges
from brainxr.plotting.glass_brain import GLASS_BRAIN_GID


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _drawn_edges(ax):
    """(x0, x1, y0, y1, r, g, b, a, width, zorder) of each edge in drawing order.

    nilearn draws one ``Line2D`` per edge (drawn in zorder, then insertion
    order); brainxr one ``LineCollection`` per view (segments in drawing
    order, under the collection's zorder).
    """
    rows = []
    for line in ax.lines:
        if isinstance(line, Line2D) and len(line.get_xdata()) == 2:
            rows.append((*line.get_xdata(), *line.get_ydata(), *to_rgba(line.get_color()), line.get_linewidth(),
                         line.get_zorder()))
    for collection in _edge_collections(ax):
        colors, widths = collection.get_colors(), collection.get_linewidths()
        for index, ((x0, y0), (x1, y1)) in enumerate(collection.get_segments()):
            rows.append((x0, x1, y0, y1, *colors[index % len(colors)], widths[index % len(widths)],
                         collection.get_zorder()))
    return [row for _, row in sorted(enumerate(rows), key=lambda item: (item[1][-1], item[0]))]


def _edge_collections(ax):
    """The line collections of an axes but the glass brain's outlines."""
    return [c for c in ax.collections if isinstance(c, LineCollection) and c.get_gid() != GLASS_BRAIN_GID]


def _lines(ax):
    """The edges drawn on an axes, as rows of ``_drawn_edges`` without the zorder."""
    return [row[:-1] for row in _drawn_edges(ax)]


def _line_summary(ax):
    """Sorted (x0, x1, y0, y1, r, g, b, a, width) of the edges drawn on an axes."""
    return np.array(sorted(_lines(ax)))


def test_percentile_threshold_keeps_the_strongest_lower_triangle_edges():
    weights, coords = random_connectome(30, seed=1)
    edges = graph_edges(weights, coords, edge_threshold="95%")
    lower = np.abs(weights[np.tril_indices(30, k=-1)])
    expected_threshold = scoreatpercentile(lower, 95) + 1e-5
    assert edges.threshold == pytest.approx(expected_threshold)
    assert len(edges.values) == np.count_nonzero(lower >= expected_threshold)
    assert np.all(np.abs(edges.values) >= expected_threshold)
    assert np.all(edges.pairs[:, 0] > edges.pairs[:, 1])  # one edge per pair, no diagonal


def test_99_8_percent_on_a_known_matrix_keeps_exactly_the_top_edge():
    # 20 nodes: 190 pairs; 99.8% leaves only values above the 189.6th ranked one
    n_nodes = 20
    weights = np.zeros((n_nodes, n_nodes))
    rows, cols = np.tril_indices(n_nodes, k=-1)
    weights[rows, cols] = np.linspace(0.01, 1.0, len(rows)) * np.where(np.arange(len(rows)) % 2, 1, -1)
    weights = weights + weights.T
    coords = np.column_stack([np.linspace(-60, 60, n_nodes), np.zeros(n_nodes), np.zeros(n_nodes)])
    edges = graph_edges(weights, coords, "99.8%")
    strongest = np.argmax(np.abs(weights[rows, cols]))
    assert edges.pairs.tolist() == [[rows[strongest], cols[strongest]]]


def test_number_threshold_is_absolute():
    weights = np.array([[1.0, -0.8, 0.2], [-0.8, 1.0, 0.5], [0.2, 0.5, 1.0]])
    edges = graph_edges(weights, np.eye(3) * 10, edge_threshold=0.5)
    assert sorted(edges.values.tolist()) == [-0.8, 0.5]


@pytest.mark.parametrize("display_mode", ["ortho", "lzry"])
def test_edges_and_colours_match_nilearn(brain_mask, display_mode):  # noqa: F811
    from nilearn import plotting as nilearn_plotting

    weights, coords = random_connectome(25, seed=2)
    ours = plot_connectome(weights, coords, edge_threshold="90%", display_mode=display_mode, brain_mask=brain_mask)
    theirs = nilearn_plotting.plot_connectome(weights, coords, edge_threshold="90%", display_mode=display_mode)
    for direction in ours.axes:
        mine, reference = _line_summary(ours.axes[direction].ax), _line_summary(theirs.axes[direction].ax)
        assert mine.shape == reference.shape and len(mine) > 0, direction
        np.testing.assert_allclose(mine, reference, rtol=1e-6, atol=1e-6)


def test_edge_vmin_vmax_set_the_colour_scale(brain_mask):  # noqa: F811
    weights = np.array([[0, 0.2, -0.4], [0.2, 0, 0.6], [-0.4, 0.6, 0]])
    coords = np.array([[-40.0, 0, 0], [40, 0, 0], [0, 30, 20]])
    display = plot_connectome(weights, coords, edge_vmin=-1.0, edge_vmax=1.0, edge_cmap="viridis",
                              brain_mask=brain_mask, colorbar=True)
    colours = {round(row[1] - row[0], 6): row[4:8] for row in _lines(display.axes["y"].ax)}
    norm = Normalize(-1.0, 1.0)
    for (i, j) in [(1, 0), (2, 0), (2, 1)]:
        dx = round(coords[j, 0] - coords[i, 0], 6)
        assert np.allclose(colours[dx], plt.get_cmap("viridis")(norm(weights[i, j])))
    assert display._cbar.mappable.norm.vmin == -1.0 and display._cbar.mappable.norm.vmax == 1.0


def test_default_colour_range_is_symmetric_at_the_largest_kept_weight():
    assert edge_color_range(np.array([0.3, -0.7, 0.5])) == (-0.7, 0.7)
    assert edge_color_range(np.array([0.3]), edge_vmax=0.5) == (-0.5, 0.5)
    assert edge_color_range(np.array([0.3]), edge_vmin=-0.2) == (-0.2, 0.2)
    with pytest.raises(ValueError, match="edge_vmin"):
        edge_color_range(np.array([0.3]), edge_vmax=-0.5)


def test_labeled_dataarray_plots_with_its_own_coordinates(brain_mask):  # noqa: F811
    weights, coords = random_connectome(10, seed=3)
    names = [f"region {i}" for i in range(10)]
    region = {"region": names, "x": ("region", coords[:, 0]), "y": ("region", coords[:, 1]), "z": ("region", coords[:, 2])}
    region_ = {f"{k}_": (("region_", v[1]) if isinstance(v, tuple) else v) for k, v in region.items()}
    region_["region_"] = names
    conn = xr.DataArray(weights, dims=("region", "region_"), coords={**region, **region_})
    from_dataarray = plot_connectome(conn, edge_threshold="80%", brain_mask=brain_mask)
    from_numpy = plot_connectome(weights, coords, edge_threshold="80%", brain_mask=brain_mask)
    np.testing.assert_array_equal(_line_summary(from_dataarray.axes["z"].ax), _line_summary(from_numpy.axes["z"].ax))


def test_hemisphere_views_keep_their_own_nodes_and_edges(brain_mask):  # noqa: F811
    weights = np.ones((3, 3))
    coords = np.array([[-40.0, 0, 0], [-20, 10, 0], [30, 0, 0]])
    display = plot_connectome(weights, coords, display_mode="lr", brain_mask=brain_mask)
    assert len(_lines(display.axes["l"].ax)) == 1  # only the left-left edge
    assert len(_lines(display.axes["r"].ax)) == 0
    assert display.axes["l"].ax.get_xlim()[0] > display.axes["l"].ax.get_xlim()[1]  # seen from the left


def test_directed_graph_warns_and_draws_arrows(brain_mask):  # noqa: F811
    weights = np.array([[0, 1.0], [0, 0]])
    with pytest.warns(UserWarning, match="not symmetric"):
        display = plot_connectome(weights, [[-30, 0, 0], [30, 0, 0]], brain_mask=brain_mask)
    assert len(display.axes["z"].ax.patches) >= 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"adjacency_matrix": np.ones((3, 2)), "node_coords": np.zeros((3, 3))}, ValueError, "square"),
        ({"adjacency_matrix": np.ones((3, 3)), "node_coords": np.zeros((2, 3))}, ValueError, "node_coords"),
        ({"adjacency_matrix": np.ones((3, 3)), "node_coords": np.zeros((3, 2))}, ValueError, r"\(n, 3\)"),
        ({"adjacency_matrix": np.ones((3, 3)), "node_coords": None}, ValueError, "node_coords"),
        ({"adjacency_matrix": np.ones((3, 3)), "node_coords": np.zeros((3, 3)), "edge_threshold": "90"}, ValueError, "percent"),
        ({"adjacency_matrix": np.ones((3, 3)), "node_coords": np.zeros((3, 3)), "edge_threshold": -1}, ValueError, "non-negative"),
        ({"adjacency_matrix": np.ones((3, 3)), "node_coords": np.zeros((3, 3)), "display_mode": "xyz"}, ValueError, "display_mode"),
        ({"adjacency_matrix": np.ones((3, 3)), "node_coords": np.zeros((3, 3)), "node_kwargs": {"s": 3}}, ValueError, "node_size"),
    ],
)
def test_bad_input_names_the_parameter(brain_mask, kwargs, error, match):  # noqa: F811
    with pytest.raises(error, match=match):
        plot_connectome(brain_mask=brain_mask, **kwargs)


def test_check_threshold_rejects_non_numbers():
    with pytest.raises(TypeError, match="edge_threshold"):
        check_threshold([1], np.ones(3), name="edge_threshold")


def test_markers_colour_nodes_by_value_and_threshold(brain_mask):  # noqa: F811
    values = np.array([1.0, 2.0, 3.0, 4.0])
    coords = np.array([[-40.0, 0, 0], [-20, 10, 0], [30, 0, 0], [10, -40, 20]])
    display = plot_markers(values, coords, node_cmap="viridis", node_threshold=1.5, brain_mask=brain_mask)
    scatter = display.axes["z"].ax.collections[-1]
    assert len(scatter.get_offsets()) == 3
    expected = plt.get_cmap("viridis")(Normalize(2.0, 4.0)(values[1:]))
    np.testing.assert_allclose(scatter.get_facecolors()[:, :3], expected[:, :3])
    with pytest.raises(ValueError, match="node_values"):
        plot_markers(values[:3], coords, brain_mask=brain_mask)
    with pytest.raises(ValueError, match="node_threshold"):
        plot_markers(values, coords, node_threshold=10, brain_mask=brain_mask)


def test_markers_take_coordinates_from_a_dataarray(brain_mask):  # noqa: F811
    coords = np.array([[-40.0, 0, 0], [30, 0, 0]])
    strength = xr.DataArray([0.5, 1.0], dims="region", coords={"region": ["a", "b"], "x": ("region", coords[:, 0]),
                                                                 "y": ("region", coords[:, 1]), "z": ("region", coords[:, 2])})
    display = plot_markers(strength, brain_mask=brain_mask)
    np.testing.assert_allclose(display.axes["z"].ax.collections[-1].get_offsets(), coords[:, :2])


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_output_file_saves_and_closes(tmp_path, brain_mask, suffix):  # noqa: F811
    weights, coords = random_connectome(6)
    path = tmp_path / f"connectome{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot_connectome(weights, coords, output_file=path, brain_mask=brain_mask) is None
    assert path.stat().st_size > 1000
    assert not plt.get_fignums()


def test_default_outlines_come_from_the_template_mask():
    from brainxr.plotting._template import template_brain_mask
    from brainxr.plotting.glass_brain import mask_projections

    weights, coords = random_connectome(5)
    display = plot_connectome(weights, coords)
    expected = mask_projections(template_brain_mask())["z"].bounds()
    assert display.axes["z"].get_object_bounds() == pytest.approx(expected)


def _pixels(figure) -> np.ndarray:
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba()).copy()


@pytest.mark.parametrize("display_mode", ["ortho", "lr"])
def test_edges_are_stacked_and_rendered_as_nilearns_lines(brain_mask, display_mode):  # noqa: F811
    from nilearn import plotting as nilearn_plotting

    weights, coords = random_connectome(20, seed=4)
    ours = plot_connectome(weights, coords, edge_threshold="50%", display_mode=display_mode, brain_mask=brain_mask)
    theirs = nilearn_plotting.plot_connectome(weights, coords, edge_threshold="50%", display_mode=display_mode)
    for direction, display_ax in ours.axes.items():
        ax, reference = display_ax.ax, theirs.axes[direction].ax
        # stronger edges over weaker ones, in nilearn's order
        mine, expected = np.array(_drawn_edges(ax))[:, :4], np.array(_drawn_edges(reference))[:, :4]
        np.testing.assert_allclose(mine, expected, rtol=1e-6, atol=1e-6)
        # the figure with nilearn's Line2D edges in place of the collection is the same picture
        picture = _pixels(ax.figure)
        for collection in _edge_collections(ax):
            collection.remove()
        for line in reference.lines:
            if len(line.get_xdata()) == 2:
                ax.add_line(Line2D(line.get_xdata(), line.get_ydata(), color=line.get_color(),
                                   linewidth=line.get_linewidth(), zorder=line.get_zorder()))
        np.testing.assert_array_equal(_pixels(ax.figure), picture)


def test_edge_kwargs_take_line2d_names_and_override_the_style(brain_mask):  # noqa: F811
    from nilearn import plotting as nilearn_plotting

    weights, coords = random_connectome(10, seed=6)
    style = {"color": "k", "linewidth": 4, "linestyle": "--", "alpha": 0.5}
    ours = plot_connectome(weights, coords, display_mode="z", edge_kwargs=style, brain_mask=brain_mask)
    theirs = nilearn_plotting.plot_connectome(weights, coords, display_mode="z", edge_kwargs=style)
    (collection,) = _edge_collections(ours.axes["z"].ax)
    line = [line for line in theirs.axes["z"].ax.lines if len(line.get_xdata()) == 2][0]
    assert np.all(collection.get_linewidths() == line.get_linewidth())
    np.testing.assert_allclose(collection.get_colors(), [to_rgba("k", 0.5)])
    assert collection.get_alpha() == line.get_alpha()
    assert collection.get_linestyle()[0][1] is not None  # dashed
    assert collection.get_capstyle() == line.get_solid_capstyle()
