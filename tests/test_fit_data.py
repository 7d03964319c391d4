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


# ----------------------------------------------------------------------------- instrument exports


def write_bytes(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_excel_csv_with_bom_crlf_and_units_in_headers(tmp_path):
    """Keithley data saved from Excel: UTF-8 byte-order mark, CRLF, 'name (unit)' with Ω and µ."""
    text = ("Gate Voltage (V),Rxy (Ω),Rxx (kΩ),Source Current (µA)\r\n"
            "-10,-1523.4,12.1,1.0\r\n-5,-2210.0,15.3,1.0\r\n0,-6100.5,42.0,1.0\r\n5,2402.1,16.8,1.0\r\n")
    path = write_bytes(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8"), "keithley.csv")
    d = js.fit.load_hall_data(path)
    assert d.x_name == "Gate Voltage" and d.y_name == "Rxy"  # no BOM glued to the first name
    assert list(d.columns) == ["Gate Voltage", "Rxy", "Rxx", "Source Current"]
    assert d.column_units == {"Gate Voltage": "V", "Rxy": "Ohm", "Rxx": "Ohm", "Source Current": "A"}
    np.testing.assert_allclose(d.y, [-1523.4, -2210.0, -6100.5, 2402.1])
    np.testing.assert_allclose(d.columns["Rxx"], [12100.0, 15300.0, 42000.0, 16800.0])
    np.testing.assert_allclose(d.columns["Source Current"], 1e-6)
    d2 = js.fit.load_hall_data(path, x="Gate Voltage", y="Rxx")
    assert d2.y_unit == "Ohm" and d2.y[0] == pytest.approx(12100.0)
    # the same sheet saved as Excel "Unicode text": UTF-16 with a BOM, tab-delimited
    utf16 = write_bytes(tmp_path, text.replace(",", "\t").encode("utf-16"), "keithley.txt")
    d3 = js.fit.load_hall_data(utf16)
    assert list(d3.columns) == list(d.columns)
    np.testing.assert_allclose(d3.y, d.y)


LOCKIN = (
    "SR830 lock-in sweep\n"
    "Date\t2024-03-01 14:02:11\n"
    "Time constant\t300 ms\n"
    "Sensitivity\t1 mV\n"
    "Frequency (Hz)\t13.333\n"
    "% field ramp 0.1 T/min\n"
    "\n"
    "B [T]\tX [V]\tY [V]\tR [V]\t\n"
    "-1.0\t-2.10e-4\t1.1e-6\t2.10e-4\t\n"
    "-0.5\t-1.04e-4\t0.9e-6\t1.04e-4\t\n"
    "0.0\t0.02e-4\t1.0e-6\t0.02e-4\t\n"
    "0.5\t1.06e-4\t1.2e-6\t1.06e-4\t\n"
)


def test_lockin_export_with_title_metadata_and_tabs(tmp_path):
    """Title and 'key<TAB>value' settings above the table are skipped (kept as comments); trailing
    tabs do not make an extra column."""
    d = js.fit.load_hall_data(write(tmp_path, LOCKIN, "sr830.txt"), y="X")
    assert list(d.columns) == ["B", "X", "Y", "R"] and (d.x_unit, d.y_unit) == ("T", "V")
    np.testing.assert_allclose(d.x, [-1.0, -0.5, 0.0, 0.5])
    np.testing.assert_allclose(d.y, [-2.10e-4, -1.04e-4, 0.02e-4, 1.06e-4])
    assert d.comments == ("SR830 lock-in sweep", "Date\t2024-03-01 14:02:11", "Time constant\t300 ms",
                          "Sensitivity\t1 mV", "Frequency (Hz)\t13.333", "field ramp 0.1 T/min")


def test_lockin_export_whose_metadata_looks_like_a_table_needs_skip_rows(tmp_path):
    """A 'name<TAB>name / number<TAB>number' settings block is indistinguishable from a table: the
    error names the line where the real one starts and the skip_rows to pass."""
    text = "MFLI demod 1\ntc [s]\tsens [V]\n0.3\t0.001\n" + LOCKIN.split("\n\n")[1]
    path = write(tmp_path, text, "mfli.txt")
    with pytest.raises(ValueError, match=r"mfli.txt, line 4: 4 fields but the header has 2 columns"
                                         r".*pass skip_rows=3"):
        js.fit.load_hall_data(path)
    d = js.fit.load_hall_data(path, skip_rows=3, y="Y")
    assert d.comments[:3] == ("MFLI demod 1", "tc [s]\tsens [V]", "0.3\t0.001")
    np.testing.assert_allclose(d.y, [1.1e-6, 0.9e-6, 1.0e-6, 1.2e-6])


def test_european_semicolons_and_decimal_commas(tmp_path):
    text = ("B [T];R_xy [Ohm];R_xy_err [Ohm];\n-0,5;-12,25;0,5;\n0;0,1;0,5;\n0,5;12,75;0,5;\n"
            "1;1.025,5e1;1;\n")  # trailing ';' as some exports write it; '.' thousands separator
    d = js.fit.load_hall_data(write(tmp_path, text, "eu.csv"))
    assert list(d.columns) == ["B", "R_xy", "R_xy_err"]
    np.testing.assert_allclose(d.x, [-0.5, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(d.y, [-12.25, 0.1, 12.75, 10255.0])
    np.testing.assert_allclose(d.sigma, [0.5, 0.5, 0.5, 1.0])


def test_explicit_wrong_delimiter_suggests_the_right_one(tmp_path):
    path = write(tmp_path, "B [T];R_xy [Ohm]\n0;1\n1;2\n", "semi.csv")
    with pytest.raises(ValueError, match=r"semi.csv: found no header.*it reads with delimiter=';'"):
        js.fit.load_hall_data(path, delimiter=",")
    np.testing.assert_allclose(js.fit.load_hall_data(path, delimiter=";").y, [1, 2])


def test_latin1_micro_sign_and_wrong_encoding_error(tmp_path):
    text = "B [T]\tI [µA]\tV_xy [mV]\n0\t10\t0.0\n1\t10\t2.5\n2\t10\t5.1\n"
    path = write_bytes(tmp_path, text.encode("latin-1"), "latin1.dat")
    d = js.fit.load_hall_data(path, y="V_xy")
    np.testing.assert_allclose(d.columns["I"], 1e-5)
    np.testing.assert_allclose(d.y, [0.0, 2.5e-3, 5.1e-3])
    with pytest.raises(ValueError, match=r"latin1.dat: cannot be read as utf-8.*encoding='latin-1'"):
        js.fit.load_hall_data(path, encoding="utf-8")


PPMS = """[Header]
; Data File
TITLE,Hall bar HB-3
BYAPP,Electrical Transport Option,Release 1.2.0 Build 0
FILEOPENTIME,3767585012.50,05/18/2023,10:23 am
INFO,Sample 1 ETO channel 1,APPNAME
DATATYPE,COMMENT,1
DATATYPE,TIME,1
FIELDGROUP,Temperature,Temperature (K)
[Data]
Comment,Time Stamp (sec),Temperature (K),Magnetic Field (Oe),Resistance Ch1 (Ohms),Resistance Std. Dev. Ch1 (Ohms),Phase Angle Ch1 (deg)
,3767585020.1,2.0012,-20000.3,-304.61,0.05,0.12
,3767585030.4,2.0009,-10000.2,-152.31,0.04,0.11
ramp paused,3767585035.0,2.0010,,,,
,3767585040.2,2.0011,0.1,0.02,0.04,0.10
,3767585050.6,2.0013,10000.4,152.40,0.05,0.12
"""


def test_ppms_dat_file(tmp_path):
    """Quantum Design MultiVu .dat: [Header] section, units Oe/Ohms/sec/deg, a text Comment column."""
    path = write(tmp_path, PPMS, "hall.dat")
    kw = dict(x="Magnetic Field", y="Resistance Ch1", sigma="Resistance Std. Dev. Ch1")
    with pytest.raises(ValueError, match=r"hall.dat: NaN or missing values in data rows \[3\].*drop_nan=True"):
        js.fit.load_hall_data(path, **kw)
    with pytest.warns(UserWarning, match="dropped 1 rows"):
        d = js.fit.load_hall_data(path, drop_nan=True, **kw)
    np.testing.assert_allclose(d.x, [-2.00003, -1.00002, 1e-5, 1.00004])  # Oe → T
    np.testing.assert_allclose(d.y, [-304.61, -152.31, 0.02, 152.40])
    np.testing.assert_allclose(d.sigma, [0.05, 0.04, 0.04, 0.05])
    assert d.column_units["Temperature"] == "K" and d.column_units["Time Stamp"] == "s"
    assert d.column_units["Phase Angle Ch1"] is None  # 'deg' is not a known unit: kept as written
    np.testing.assert_allclose(d.columns["Phase Angle Ch1"][[0, 3]], [0.12, 0.10])
    assert np.isnan(d.columns["Comment"]).all()
    assert d.comments[0] == "[Header]" and d.comments[2] == "TITLE,Hall bar HB-3"
    with pytest.raises(ValueError, match=r"hall.dat: column 'Phase Angle Ch1': unknown unit 'deg'"):
        js.fit.load_hall_data(path, x="Magnetic Field", y="Phase Angle Ch1")
    with pytest.raises(ValueError, match=r"hall.dat, line 14: not a number in column 'Comment'"):
        js.fit.load_hall_data(path, x="Magnetic Field", y="Comment", units={"Comment": "1"})


def test_no_table_and_ambiguous_delimiter_errors(tmp_path):
    with pytest.raises(ValueError, match=r"notes.txt: found no header line.*skip_rows"):
        js.fit.load_hall_data(write(tmp_path, "just a note\n1 2\n3 4\n", "notes.txt"))
    # space-separated settings above a tab table: a table from line 1 (spaces) or line 3 (tabs)
    with pytest.raises(ValueError, match=r"amb.txt: the delimiter is ambiguous: delimiter='\\t' gives"
                                         r" 2 columns.*delimiter=' ' \(whitespace\) gives 2 columns"):
        js.fit.load_hall_data(write(tmp_path, "T B\n1.8 0.5\nB\tR\n0\t1\n1\t2\n", "amb.txt"))
    with pytest.raises(ValueError, match="skip_rows must be"):
        js.fit.load_hall_data(write(tmp_path, "B [T],R [Ohm]\n0,1\n1,2\n"), skip_rows=-1)
