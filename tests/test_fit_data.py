"""js.fit.load_hall_data: units from headers or arguments, and every loader error."""

import numpy as np
import pytest

import jaxsemi as js

E2H = 1.602176634e-19**2 / 6.62607015e-34  # exact; = 3.8740458649e-5 S to 11 digits


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("unit, quantity, factor", [
    ("1e12 cm^-2", "density", 1e-4), ("10^12 cm^-2", "density", 1e-4), ("cm^-2", "density", 1e-16),
    ("m^-2", "density", 1e-20), ("A^-2", "density", 1.0), ("e2/h", "conductance", 1.0),
    ("S", "conductance", 1 / E2H), ("mS", "conductance", 1e-3 / E2H), ("Ohm", "resistance", 1.0),
    ("kOhm", "resistance", 1e3), ("h/e2", "resistance", 1 / E2H), ("T", "field", 1.0),
    ("mT", "field", 1e-3), ("V", "voltage", 1.0), ("uV", "voltage", 1e-6), ("nA", "current", 1e-9),
    ("meV", "energy", 1e-3), ("K", "temperature", 1.0), ("um", "length", 1e-6),
])
def test_parse_unit(unit, quantity, factor):
    q, f = js.fit.parse_unit(unit)
    assert q == quantity and f == pytest.approx(factor, rel=1e-12)


def test_unknown_unit_is_an_error():
    with pytest.raises(ValueError, match="unknown unit 'furlong'"):
        js.fit.parse_unit("furlong")


def test_csv_with_units_in_header(tmp_path):
    path = write(tmp_path, "# T = 2 K\n# sample A\nn [1e12 cm^-2], sigma_xy [S], sigma_xy_err [S]\n"
                 "-1.0, 1e-5, 1e-7\n0.5, 2e-5, 1e-7\n2.0, 3e-5, 2e-7\n")
    d = js.fit.load_hall_data(path)
    np.testing.assert_allclose(d.x, [-1e-4, 0.5e-4, 2e-4])
    np.testing.assert_allclose(d.y, np.array([1e-5, 2e-5, 3e-5]) / E2H, rtol=1e-12)
    np.testing.assert_allclose(d.sigma, np.array([1e-7, 1e-7, 2e-7]) / E2H, rtol=1e-12)
    assert (d.x_unit, d.y_unit) == ("A^-2", "e2/h")
    assert d.comments == ("T = 2 K", "sample A") and d.cleaning == ()
    assert "sigma_xy" in repr(d) and len(d) == 3


def test_whitespace_table_with_spaces_in_units_and_unit_arguments(tmp_path):
    path = write(tmp_path, "B [T]   R_xy (kOhm)  Vg\n-1  -2.5  3\n0  0.1  3\n1  2.7  3\n", "sweep.dat")
    d = js.fit.load_hall_data(path, x="B", y="R_xy")
    np.testing.assert_allclose(d.y, [-2500.0, 100.0, 2700.0])
    assert d.sigma is None and d.column_units["Vg"] is None
    np.testing.assert_allclose(d.columns["Vg"], 3.0)
    d2 = js.fit.load_hall_data(path, units={"R_xy": "Ohm"})
    np.testing.assert_allclose(d2.y, [-2.5, 0.1, 2.7])  # the argument overrides the header
    d3 = js.fit.load_hall_data(path, y="Vg", units={"Vg": "mV"})
    np.testing.assert_allclose(d3.y, 3e-3)
    with pytest.raises(ValueError, match="has no unit"):
        js.fit.load_hall_data(path, x="Vg", y="R_xy")
    with pytest.raises(ValueError, match="not found"):
        js.fit.load_hall_data(path, y="R_xx")
    with pytest.raises(ValueError, match="units names column"):
        js.fit.load_hall_data(path, units={"I": "A"})


def test_unknown_unit_in_header(tmp_path):
    path = write(tmp_path, "n [1e12 cm^-2],sigma_xy [e2/hh]\n1,2\n2,3\n")
    with pytest.raises(ValueError, match="unknown unit 'e2/hh'"):
        js.fit.load_hall_data(path)


def test_mismatched_row_length_names_the_line(tmp_path):
    path = write(tmp_path, "n [1e12 cm^-2],sigma_xy [e2/h]\n1,2\n2\n3,4\n")
    with pytest.raises(ValueError, match="line 3: 1 fields but the header has 2"):
        js.fit.load_hall_data(path)


def test_non_number_names_the_line(tmp_path):
    path = write(tmp_path, "n [1e12 cm^-2],sigma_xy [e2/h]\n1,2\n2,abc\n")
    with pytest.raises(ValueError, match="line 3: not a number"):
        js.fit.load_hall_data(path)


def test_nan_rows_raise_or_are_dropped_and_reported(tmp_path):
    path = write(tmp_path, "n [1e12 cm^-2],sigma_xy [e2/h]\n1,2\n2,nan\n3,\n4,5\n")
    with pytest.raises(ValueError, match=r"data rows \[2, 3\]"):
        js.fit.load_hall_data(path)
    with pytest.warns(UserWarning, match="dropped 2 rows"):
        d = js.fit.load_hall_data(path, drop_nan=True)
    np.testing.assert_allclose(d.x, [1e-4, 4e-4])
    assert d.cleaning == ("dropped 2 rows with NaN (data rows [2, 3])",)


def test_unsorted_abscissa_raises_or_is_sorted_and_reported(tmp_path):
    path = write(tmp_path, "B [T],R_xy [Ohm]\n1,10\n-1,-10\n0,0\n")
    with pytest.raises(ValueError, match="not increasing"):
        js.fit.load_hall_data(path)
    with pytest.warns(UserWarning, match="sorted"):
        d = js.fit.load_hall_data(path, sort=True)
    np.testing.assert_allclose(d.x, [-1, 0, 1])
    np.testing.assert_allclose(d.y, [-10, 0, 10])


def test_duplicated_abscissa_raises_or_is_averaged_with_weights(tmp_path):
    path = write(tmp_path, "B [T],R_xy [Ohm],R_xy_err [Ohm]\n0,1,1\n1,10,1\n1,13,2\n2,20,1\n")
    with pytest.raises(ValueError, match=r"duplicated abscissa values B = \[1.0\]"):
        js.fit.load_hall_data(path)
    with pytest.warns(UserWarning, match="averaged"):
        d = js.fit.load_hall_data(path, duplicates="average")
    np.testing.assert_allclose(d.x, [0, 1, 2])
    # weighted mean (10/1 + 13/4)/(1 + 1/4) = 10.6, error 1/sqrt(1.25)
    np.testing.assert_allclose(d.y, [1, 10.6, 20])
    np.testing.assert_allclose(d.sigma, [1, 1 / np.sqrt(1.25), 1])


def test_sigma_column_must_match_y_quantity(tmp_path):
    path = write(tmp_path, "n [1e12 cm^-2],sigma_xy [e2/h],sigma_xy_err [Ohm]\n1,2,3\n2,3,4\n")
    with pytest.raises(ValueError, match="sigma column"):
        js.fit.load_hall_data(path)


def test_example_data_is_documented_synthetic_and_loads():
    d = js.fit.load_example_data()
    text = "\n".join(d.comments)
    assert "SYNTHETIC" in text and f"seed={js.fit.EXAMPLE['seed']}" in text
    assert len(d) == js.fit.EXAMPLE["n_points"] and d.sigma is not None
    np.testing.assert_allclose(d.x[[0, -1]], np.array([js.fit.EXAMPLE["n_min"], js.fit.EXAMPLE["n_max"]]) * 1e-4)
    # σ_xy peaks (most negative, near −1/2 for a surface Dirac cone) where the true density n + n0 ≈ 0
    assert d.x[np.argmin(d.y)] / 1e-4 == pytest.approx(-js.fit.EXAMPLE["n0"], abs=0.13)
    assert -0.5 < d.y.min() < -0.35
