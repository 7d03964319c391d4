"""Plot helpers run on Agg and draw what the physics says (fast)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jaxsemi as js  # noqa: E402
from jaxsemi import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_k_path_lengths():
    points, dist, ticks = plot.k_path([[0, 0], [3, 0], [3, 4]], n_per_segment=11)
    assert points.shape == (21, 2)
    np.testing.assert_allclose(ticks, [0, 3, 7])
    np.testing.assert_allclose(dist[[0, 10, 20]], ticks)
    with pytest.raises(ValueError, match="nodes"):
        plot.k_path([[0, 0]])


def test_bands_of_massive_dirac(dirac):
    """Lines follow ±√(v²k² + Δ²): the gap 2Δ at Γ (the middle node)."""
    ax = plot.bands(dirac, [[-0.5, 0], [0, 0], [0, 0.5]], labels=["X", "Γ", "Y"], n_per_segment=21)
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 41]
    assert len(lines) == 2
    lower, upper = (np.asarray(ln.get_ydata()) for ln in lines)
    np.testing.assert_allclose([lower[20], upper[20]], [-0.1, 0.1], atol=1e-12)
    np.testing.assert_allclose(upper[0], np.hypot(0.5, 0.1), atol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["X", "Γ", "Y"]
    with pytest.raises(ValueError, match="labels"):
        plot.bands(dirac, [[0, 0], [1, 0]], labels=["only one"])


def test_berry_curvature_map_of_massive_dirac(dirac):
    """The lower-band peak Ω(0) = v²/(2Δ²) = 50 Å² sits at the centre; a colourbar is drawn."""
    ax = plot.berry_curvature_map(dirac, 0, kx_range=(-0.5, 0.5), ky_range=(-0.5, 0.5), n=21)
    (mesh,) = ax.collections
    omega = np.asarray(mesh.get_array()).reshape(21, 21)
    assert omega[10, 10] == pytest.approx(50.0, rel=1e-10)
    k = np.hypot(0.5, 0.0)
    assert omega[10, -1] == pytest.approx(0.1 / (2 * (k**2 + 0.01) ** 1.5), rel=1e-10)
    assert len(ax.figure.axes) == 2
    assert mesh.norm.vmin == -mesh.norm.vmax
    with pytest.raises(ValueError, match="kx_range"):
        plot.berry_curvature_map(dirac)


def test_berry_curvature_map_lattice_default_window():
    """Default window ±|b| = ±2π/Å for QWZ; at Γ, Ω_lower = d·(∂d/∂kx × ∂d/∂ky)/(2|d|³) = 3/54."""
    ax = plot.berry_curvature_map(js.models.qwz(1.0), 0, n=9, colorbar=False)
    omega = np.asarray(ax.collections[0].get_array()).reshape(9, 9)
    assert omega[4, 4] == pytest.approx(1 / 18, rel=1e-10)
    lo, hi = ax.get_xlim()
    assert lo <= -2 * np.pi and hi >= 2 * np.pi
    assert len(ax.figure.axes) == 1


def test_hall_curve_draws_data():
    mu = np.linspace(-1, 1, 5)
    ax = plot.hall_curve(mu, -np.tanh(mu), label="tanh")
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), mu)
    np.testing.assert_allclose(line.get_ydata(), -np.tanh(mu))
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match="mu must be"):
        plot.hall_curve(mu, mu[:3])


def test_chern_phase_diagram_levels():
    x, y = np.linspace(-1, 1, 4), np.linspace(0, 1, 3)
    c = np.array([[0, 1, 1, 0], [0, -1.0000001, 1, 0], [0, 0, 0, 0]])
    ax = plot.chern_phase_diagram(x, y, c, xlabel="M", ylabel="φ")
    mesh = ax.collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(3, 4), np.rint(c))
    cbar_ticks = ax.figure.axes[1].get_yticks()
    np.testing.assert_array_equal(cbar_ticks, [-1, 0, 1])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("M", "φ")
    with pytest.raises(ValueError, match="chern must have shape"):
        plot.chern_phase_diagram(x, y, c.T)
