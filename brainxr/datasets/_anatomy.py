"""A synthetic adult brain as smooth implicit shapes in MNI152 millimetres.

The brain is a function of world position, not a voxel array: every field
below takes an ``(n, 3)`` array of MNI coordinates (mm) and returns one value
per point, so any grid, at any resolution, samples the same continuous brain.

Shapes are superellipsoids joined with smooth unions: two cerebral
hemispheres split by a midline fissure above a diencephalic bridge, temporal
lobes, a cerebellum with vermis and a brainstem. Inside, a folded cortical
ribbon of gray matter (its depth modulated by a smooth deterministic "gyral"
field, with CSF-filled sulci), white matter, lateral ventricles and deep gray
nuclei. The numbers were tuned so that the 2 mm brain mask holds about as many
voxels as the real MNI152 2 mm brain mask (~228k) and its three projections
read as a brain on a glass-brain plot.
"""

from __future__ import annotations

import numpy as np

# tissue classes of :func:`tissue_labels`
BACKGROUND, CSF, GRAY_MATTER, WHITE_MATTER = 0, 1, 2, 3


def _superellipsoid(xyz, center, radii, exponent=2.0):
    """Approximate signed distance (mm) to a superellipsoid, negative inside."""
    scaled = np.abs((xyz - np.asarray(center, dtype=float)) / np.asarray(radii, dtype=float))
    level = np.sum(scaled**exponent, axis=1) ** (1.0 / exponent)
    return (level - 1.0) * float(np.min(radii))


def _smooth_union(a, b, blend):
    """Polynomial smooth minimum: the union of two shapes with a fillet of ``blend`` mm."""
    h = np.clip(0.5 + 0.5 * (b - a) / blend, 0.0, 1.0)
    return b + (a - b) * h - blend * h * (1.0 - h)


def _smooth_intersection(a, b, blend):
    return -_smooth_union(-a, -b, blend)


def _mirror_x(xyz):
    """Fold the left hemisphere onto the right: shapes below are defined for x >= 0."""
    folded = xyz.copy()
    folded[:, 0] = np.abs(folded[:, 0])
    return folded


def _wave_field(xyz, n_waves, wavelength_range, seed):
    """A smooth, deterministic random field in [-1, 1]: a sum of plane waves.

    Mirror-symmetric in x, so both hemispheres fold alike (homotopic regions
    then have the same shape).
    """
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(*wavelength_range, size=n_waves)
    phases = rng.uniform(0, 2 * np.pi, size=n_waves)
    folded = _mirror_x(xyz)
    field = np.zeros(len(xyz))
    for direction, wavelength, phase in zip(directions, wavelengths, phases):
        field += np.cos(folded @ direction * (2 * np.pi / wavelength) + phase)
    return field / np.sqrt(n_waves / 2.0)


def cerebrum_distance(xyz):
    """Signed distance-like field of the cerebrum (hemispheres, temporal lobes, diencephalon)."""
    folded = _mirror_x(xyz)
    # one egg-shaped dome for both hemispheres, a little wider at the back
    taper = 1.0 - 0.08 * (folded[:, 1] + 17.0) / 88.0
    egg = folded.copy()
    egg[:, 0] = folded[:, 0] / taper
    dome = _superellipsoid(egg, (0.0, -17.0, 6.0), (71.0, 90.0, 76.0), 2.3)
    # flatten the base of the frontal and occipital lobes (orbital surface, tentorium)
    floor = -(folded[:, 2] + 24.0 - 0.0022 * (folded[:, 1] + 17.0) ** 2)
    hemisphere = _smooth_intersection(dome, floor, 10.0)
    temporal = _superellipsoid(folded, (44.0, -20.0, -16.0), (23.0, 48.0, 24.0), 2.2)
    hemisphere = _smooth_union(hemisphere, temporal, 10.0)
    # interhemispheric fissure: a thin slab at the midline, down to the callosum
    fissure = np.abs(xyz[:, 0]) - 1.2
    hemisphere = np.maximum(hemisphere, -fissure)
    bridge = _superellipsoid(xyz, (0.0, -14.0, 4.0), (16.0, 36.0, 20.0), 2.0)
    return _smooth_union(hemisphere, bridge, 4.0)


def cerebellum_distance(xyz):
    """Signed distance-like field of the cerebellum (two lobes and the vermis)."""
    folded = _mirror_x(xyz)
    lobe = _superellipsoid(folded, (24.0, -62.0, -34.0), (26.0, 26.0, 18.0), 2.2)
    vermis = _superellipsoid(xyz, (0.0, -60.0, -28.0), (10.0, 24.0, 18.0), 2.0)
    return _smooth_union(lobe, vermis, 6.0)


def brainstem_distance(xyz):
    """Signed distance-like field of the brainstem (medulla, pons, midbrain)."""
    stem = _superellipsoid(xyz, (0.0, -28.0, -36.0), (12.0, 14.0, 36.0), 2.0)
    pons = _superellipsoid(xyz, (0.0, -24.0, -30.0), (16.0, 16.0, 14.0), 2.0)
    return _smooth_union(stem, pons, 4.0)


def brain_distance(xyz):
    """Signed distance-like field of the whole brain: negative inside."""
    return _join_parts(cerebrum_distance(xyz), cerebellum_distance(xyz), brainstem_distance(xyz))


def _join_parts(cerebrum, cerebellum, stem):
    return _smooth_union(_smooth_union(cerebrum, stem, 6.0), cerebellum, 4.0)


# every part of the brain lies inside this box (mm); points outside are background
_BRAIN_BOX = ((-80.0, -115.0, -80.0), (80.0, 85.0, 90.0))
# the cortical ribbon and sulci never reach deeper than this (mm)
_MAX_CORTEX_DEPTH = 20.0


def _deep_gray(xyz):
    """Thalamus, caudate and putamen (both sides): negative inside."""
    folded = _mirror_x(xyz)
    thalamus = _superellipsoid(folded, (10.0, -18.0, 6.0), (8.0, 14.0, 9.0))
    caudate = _superellipsoid(folded, (13.0, 10.0, 10.0), (5.0, 14.0, 8.0))
    putamen = _superellipsoid(folded, (25.0, 2.0, 0.0), (6.0, 16.0, 9.0))
    return np.minimum(np.minimum(thalamus, caudate), putamen)


def _ventricles(xyz):
    """Lateral ventricles (bodies and horns) and the third ventricle: negative inside."""
    folded = _mirror_x(xyz)
    body = _superellipsoid(folded, (8.0, -10.0, 18.0), (5.0, 30.0, 5.0))
    occipital_horn = _superellipsoid(folded, (22.0, -36.0, 6.0), (4.0, 12.0, 8.0))
    temporal_horn = _superellipsoid(folded, (30.0, -20.0, -12.0), (3.0, 14.0, 4.0))
    third = _superellipsoid(xyz, (0.0, -14.0, 2.0), (2.0, 14.0, 8.0))
    lateral = _smooth_union(body, occipital_horn, 6.0)
    return np.minimum(np.minimum(lateral, temporal_horn), third)


def tissue_labels(xyz):
    """Tissue class at each point: 0 background, 1 CSF, 2 gray matter, 3 white matter.

    Parameters
    ----------
    xyz : ndarray of shape (n, 3)
        MNI coordinates in mm.

    Returns
    -------
    ndarray of uint8, shape (n,)
    """
    xyz = np.asarray(xyz, dtype=float)
    labels = np.zeros(len(xyz), dtype=np.uint8)
    in_box = np.all((xyz >= _BRAIN_BOX[0]) & (xyz <= _BRAIN_BOX[1]), axis=1)
    box_points = xyz[in_box]
    parts = (
        cerebrum_distance(box_points),
        cerebellum_distance(box_points),
        brainstem_distance(box_points),
    )
    brain = _join_parts(*parts)
    inside = brain < 0
    pts = box_points[inside]
    cerebrum, cerebellum, stem = (part[inside] for part in parts)
    depth = -brain[inside]

    in_cerebrum = (cerebrum <= cerebellum) & (cerebrum <= stem)
    in_cerebellum = (cerebellum < cerebrum) & (cerebellum <= stem)
    # the folding fields only matter near the cortical surface: evaluate them there
    near_cortex = in_cerebrum & (depth < _MAX_CORTEX_DEPTH)
    gyri = np.zeros(len(pts))
    gyri[near_cortex] = _wave_field(pts[near_cortex], 24, (14.0, 30.0), seed=20240611)
    folia = np.zeros(len(pts))
    folia[in_cerebellum] = _wave_field(pts[in_cerebellum], 16, (6.0, 10.0), seed=20240612)

    tissue = np.full(len(pts), WHITE_MATTER, dtype=np.uint8)
    # cerebral cortex: a ribbon 3.5-10.5 mm deep following the gyral field
    ribbon = 3.5 + 3.5 * (gyri + 1.0)
    tissue[in_cerebrum & (depth < ribbon)] = GRAY_MATTER
    # sulci: CSF clefts where the gyral field is low, reaching 10 mm deep
    sulcus = in_cerebrum & (gyri < -0.75) & (depth < 4.0 + 8.0 * (-0.75 - gyri))
    tissue[sulcus] = CSF
    # cerebellar cortex with folia, white-matter core
    tissue[in_cerebellum & (-cerebellum < 7.0 + 2.0 * folia)] = GRAY_MATTER
    tissue[in_cerebellum & (folia < -0.9) & (-cerebellum < 3.0)] = CSF
    # a thin CSF film at the outer surface
    tissue[depth < 0.6] = CSF
    tissue[_deep_gray(pts) < 0] = GRAY_MATTER
    tissue[_ventricles(pts) < 0] = CSF
    box_labels = np.zeros(len(box_points), dtype=np.uint8)
    box_labels[inside] = tissue
    labels[in_box] = box_labels
    return labels


def hemisphere_of(xyz):
    """-1 for the left hemisphere (x < 0), +1 for the right (x >= 0)."""
    return np.where(np.asarray(xyz)[:, 0] < 0, -1, 1)
