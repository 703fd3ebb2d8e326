"""What the receiver readers are, stated as properties (written from the survivors of the
sampled mutation run, docs/testing.md): the interpolating readers use the nearest nodes of the
computational grid and reproduce the polynomials of their degree; the representation formula's
quadrature is the 2-D trapezoid rule."""

import re
import warnings

import numpy as np
import pytest
from scipy.special import hankel1

from msinv.core.errors import UserInputError
from msinv.scattering import Geometry
from msinv.scattering.receivers import check_reader, interpolation_matrix, representation_matrix

#: points per axis of each reader's stencil, and the degree it reproduces per axis
STENCIL = {"bilinear": 2, "cubic": 4}


def _edge_geometry(fraction):
    """16 nodes, a 2-node PML and four receivers on the axes at ``0.5 + (2 - fraction) h``:
    the first and the last cell of the computational grid on both axes, ``fraction`` of a
    cell from the outer edge (where a stencil must stay inside the grid)."""
    h = 1 / 15
    return Geometry(n=16, pml_width=2, n_receivers=4, receiver_radius=0.5 + (2 - fraction) * h)


GEOMETRIES = [
    Geometry(n=16, pml_width=4, n_receivers=7, receiver_radius=0.43),  # inside the grid
    Geometry(n=16, pml_width=3, n_receivers=5, receiver_radius=0.61),  # in the PML
    _edge_geometry(0.3),
    _edge_geometry(0.8),
    # h = 1/16 and x_total[0] = -0.625 exactly: the receivers sit on the outermost nodes
    Geometry(n=17, pml_width=2, n_receivers=4, receiver_radius=0.625),
]


def _grid(g):
    xx, yy = np.meshgrid(g.x_total, g.x_total)  # [iy, ix], flattened iy * n_total + ix
    return xx.ravel(), yy.ravel()


@pytest.mark.filterwarnings("ignore:.*receivers lie in the PML:UserWarning")  # the stencil's maths
@pytest.mark.parametrize("g", GEOMETRIES, ids=["inside", "pml", "edge0.3", "edge0.8", "on-edge"])
@pytest.mark.parametrize("kind", ["bilinear", "cubic"])
def test_interpolation_uses_the_nearest_nodes_and_is_exact_on_its_polynomials(g, kind):
    """Row r of P reads receiver r from the k x k block of the grid nodes nearest to it along
    each axis (k = 2: the cell's corners; k = 4: the Lagrange stencil, shifted inward at the
    grid's edge), and it reproduces every x^i y^j with i, j < k exactly. A receiver on a node
    (ties between nearest nodes) still reads only nodes at most k - 1 cells from it."""
    k, nt = STENCIL[kind], g.n_total
    p = interpolation_matrix(g, kind)
    frac = (g.receiver_points - g.x_total[0]) / g.h  # (n_receivers, 2) in grid units
    for r in range(g.n_receivers):
        iy, ix = np.divmod(p[r].indices, nt)  # every stored entry, zeros included
        assert np.all(np.abs(ix - frac[r, 0]) <= k - 1 + 1e-9), (kind, r, frac[r])
        assert np.all(np.abs(iy - frac[r, 1]) <= k - 1 + 1e-9), (kind, r, frac[r])
        if np.any(np.abs(frac[r] - np.round(frac[r])) < 1e-6):
            continue  # on a node along an axis: the nearest k nodes are not unique
        near_x = np.argsort(np.abs(np.arange(nt) - frac[r, 0]), kind="stable")[:k]
        near_y = np.argsort(np.abs(np.arange(nt) - frac[r, 1]), kind="stable")[:k]
        expected = {iy * nt + ix for iy in near_y for ix in near_x}
        assert set(p[r].indices) == expected, (kind, r, frac[r])
    xx, yy = _grid(g)
    px, py = g.receiver_points.T
    for i in range(k):
        for j in range(k):
            np.testing.assert_allclose(
                p @ (xx**i * yy**j), px**i * py**j, rtol=1e-10, atol=1e-12, err_msg=f"x^{i} y^{j}"
            )


def test_representation_quadrature_is_the_trapezoid_rule(rng):
    """M[r, j] / (omega^2 Phi(x_r - y_j)) are the 2-D trapezoid weights: they integrate every
    bilinear function over the contrast square exactly (any receiver off the nodes)."""
    g = Geometry(n=16, extent=(-0.3, 0.7), n_receivers=5, receiver_radius=0.83)
    omega = 2 * np.pi * 1.5
    m = representation_matrix(g, omega)
    xx, yy = (a.ravel() for a in np.meshgrid(g.x, g.y))  # flattened iy * n + ix
    px, py = g.receiver_points.T
    dist = np.hypot(px[:, None] - xx[None], py[:, None] - yy[None])  # (n_receivers, n * n)
    weights = m / (omega**2 * 0.25j * hankel1(0, omega * dist))
    np.testing.assert_allclose(weights.imag, 0, atol=1e-12)
    lo, hi = g.extent
    c = rng.standard_normal(4)
    f = c[0] + c[1] * xx + c[2] * yy + c[3] * xx * yy
    integral = (hi - lo) * (c[0] * (hi - lo) + c[1] * (hi**2 - lo**2) / 2) + (
        c[2] * (hi - lo) * (hi**2 - lo**2) / 2 + c[3] * ((hi**2 - lo**2) / 2) ** 2
    )
    np.testing.assert_allclose(weights.real @ f, integral, rtol=1e-12)


def test_unknown_readers_are_refused_in_one_line():
    for name in ("representation", "cubic", "bilinear"):
        assert check_reader(name) == name
    with pytest.raises(UserInputError, match="receiver_interpolation='linear': expected one of"):
        check_reader("linear")
    with pytest.raises(UserInputError, match="interpolation kind 'quadratic'"):
        interpolation_matrix(Geometry(n=16, pml_width=2), "quadratic")


def test_a_receiver_on_a_node_reads_the_mean_of_phi_over_the_nodes_cell():
    """At a receiver on a node the singular Phi(0) is replaced by its mean over the disk of
    area h^2 (radius a = h / sqrt(pi)), whose exact value is
    i H1(omega a) / (2 omega a) - 1 / (pi (omega a)^2); the small-argument expansion the
    reader uses agrees with it to O((omega a)^2 log(omega a)) (here omega a = 0.11)."""
    g = Geometry(n=17, n_receivers=4, receiver_radius=0.5)  # (+-0.5, 0), (0, +-0.5): nodes
    omega = 2 * np.pi * 0.5
    m = representation_matrix(g, omega)
    xx, yy = (a.ravel() for a in np.meshgrid(g.x, g.y))
    a = g.h / np.sqrt(np.pi)
    exact = 1j * hankel1(1, omega * a) / (2 * omega * a) - 1 / (np.pi * (omega * a) ** 2)
    for r, (px, py) in enumerate(g.receiver_points):
        j = int(np.argmin(np.hypot(xx - px, yy - py)))
        assert np.hypot(xx[j] - px, yy[j] - py) < 1e-12
        weight = g.h**2 / 2  # an edge node of the trapezoid rule
        assert abs(m[r, j] / (omega**2 * weight) - exact) < 3e-3 * abs(exact)


@pytest.mark.parametrize("kind", ["bilinear", "cubic"])
def test_a_reader_refuses_receivers_off_the_grid_and_warns_in_the_pml(kind):
    """Off the computational grid a reader would extrapolate: refused. In the PML it reads the
    damped field: a warning. On the contrast grid's edge (the paper's circle): silent."""

    off = Geometry(n=16, pml_width=2, n_receivers=6, receiver_radius=0.8)  # grid ends at 0.633
    with pytest.raises(
        UserInputError, match=r"receiver 0 at \(0\.8, 0\).*outside the computational"
    ) as err:
        interpolation_matrix(off, kind)
    # the message names the grid's whole extent, first node to last
    extent = f"[{off.x_total[0]:.6g}, {off.x_total[-1]:.6g}]^2"
    assert extent in str(err.value) and off.x_total[0] == -off.x_total[-1]
    # half a cell beyond the last node is already off the grid
    h = 1 / 15
    just_off = Geometry(n=16, pml_width=2, n_receivers=4, receiver_radius=0.5 + 2.5 * h)
    with pytest.raises(UserInputError, match="outside the computational grid"):
        interpolation_matrix(just_off, kind)
    in_pml = Geometry(n=16, pml_width=3, n_receivers=6, receiver_radius=0.55)
    with pytest.warns(UserWarning, match="receivers lie in the PML"):
        interpolation_matrix(in_pml, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interpolation_matrix(Geometry.paper(16, pml_width="published"), kind)


def test_the_cached_representation_matrix_is_read_only():
    """representation_matrix is cached per (geometry, omega): a caller that wrote into the
    array it got would change every later solve's data, so the array is read-only."""
    g = Geometry(n=16, n_receivers=5)
    m = representation_matrix(g, 3.0)
    assert not m.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        m[0, 0] = 0.0
    assert representation_matrix(g, 3.0) is m


def test_a_receiver_a_hair_off_a_node_reads_phi_at_its_distance():
    """Only a receiver within 1e-9 h of a node takes the disk mean for it; one 1e-9 away
    (16e-9 h here, far from any node in double precision) reads Phi at its true distance,
    log-singular and large (about 3.1 here against the disk mean's 0.45)."""
    g = Geometry(n=17, n_receivers=4, receiver_radius=0.5 + 1e-9)  # h = 1/16
    omega = 2 * np.pi * 0.5
    m = representation_matrix(g, omega)
    xx, yy = (a.ravel() for a in np.meshgrid(g.x, g.y))
    weight = g.h**2 / 2  # (+-0.5, 0), (0, +-0.5): edge nodes of the trapezoid rule
    for r, (px, py) in enumerate(g.receiver_points):
        dist = np.hypot(xx - px, yy - py)
        j = int(np.argmin(dist))
        assert 1e-9 * g.h < dist[j] < 2e-9
        phi = 0.25j * hankel1(0, omega * dist[j])
        assert phi.real > 3
        np.testing.assert_allclose(m[r, j], omega**2 * weight * phi, rtol=1e-12)


@pytest.mark.parametrize("kind", ["bilinear", "cubic"])
def test_the_grid_and_pml_edges_are_located_to_1e_9_cells(kind):
    """The readers place a receiver relative to the last node of the grid and to the edge of
    the contrast grid to 1e-9 cells (rounding of the receiver coordinates): 0.5e-9 cells
    beyond an edge counts as on it, 1.5e-9 cells beyond as past it (refused off the grid,
    warned in the PML)."""
    h = 1 / 15
    last = 0.5 + 2 * h  # n = 16, a 2-node PML: the grid's last node
    with pytest.warns(UserWarning, match="receivers lie in the PML"):
        interpolation_matrix(Geometry(n=16, pml_width=2, receiver_radius=last + 0.5e-9 * h), kind)
    with pytest.raises(UserInputError, match="outside the computational grid"):
        interpolation_matrix(Geometry(n=16, pml_width=2, receiver_radius=last + 1.5e-9 * h), kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interpolation_matrix(Geometry(n=16, pml_width=2, receiver_radius=0.5 + 0.5e-9 * h), kind)
    with pytest.warns(UserWarning, match="receivers lie in the PML"):
        interpolation_matrix(Geometry(n=16, pml_width=2, receiver_radius=0.5 + 1.5e-9 * h), kind)


@pytest.mark.parametrize("kind", ["bilinear", "cubic"])
def test_receivers_past_every_edge_are_counted(kind):
    """A ring a little wider than a square pokes out near all four axes: the refusal counts
    every receiver beyond the grid, and the warning every receiver in the PML, on the negative
    sides as on the positive ones (against an independent count, max(|x|, |y|) > the edge)."""
    g0 = Geometry(n=16, pml_width=2)
    centre = (g0.x_total[-1] + g0.x_total[0]) / 2
    grid_edge = (g0.x_total[-1] - g0.x_total[0]) / 2
    contrast_edge = (g0.n - 1) / 2 * g0.h

    def beyond(g, edge):
        far = np.max(np.abs(g.receiver_points - centre), axis=1) > edge * (1 + 1e-6)
        sides = np.sign(g.receiver_points[far] - centre)
        assert {-1.0, 1.0} <= set(sides[:, 0]) and {-1.0, 1.0} <= set(sides[:, 1])
        return int(far.sum())

    g = Geometry(n=16, pml_width=2, receiver_radius=1.03 * grid_edge)
    with pytest.raises(UserInputError) as exc:
        interpolation_matrix(g, kind)
    assert int(re.search(r"\((\d+) of \d+\): the", str(exc.value)).group(1)) == beyond(g, grid_edge)
    g = Geometry(n=16, pml_width=2, receiver_radius=1.03 * contrast_edge)
    with pytest.warns(UserWarning, match="lie in the PML") as rec:
        interpolation_matrix(g, kind)
    text = str(rec[0].message)
    assert int(re.search(r"(\d+) of \d+ receivers", text).group(1)) == beyond(g, contrast_edge)
