"""Tidy in-situ table: reading, row-level validation with row numbers, writing."""

import numpy as np
import pytest

from gee_alt.errors import GeeAltError
from gee_alt.insitu.table import InsituTable, make_insitu_table, read_insitu, sniff_delimiter, write_insitu


def _write(tmp_path, text, name="insitu.csv", bom=False):
    p = tmp_path / name
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return p


GOOD = """site_id,lon,lat,year,alt_m,method,homogeneous
A1,99.10,38.00,2010,1.32,GPR,true
A1,99.10,38.00,2011,1.40,GPR,
B2,99.50,38.10,2010,2.72,probe,false
"""


def test_reads_good_table_with_types():
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        t = read_insitu(_write(pathlib.Path(d), GOOD))
    assert len(t) == 3 and t.rejected == []
    np.testing.assert_allclose(t.alt_m, [1.32, 1.40, 2.72])
    assert list(t.year) == [2010, 2011, 2010]
    assert list(t.homogeneous) == [True, None, False]
    assert list(t.censored) == ["", "", ""]


def test_bom_semicolon_decimal_comma_and_spaces(tmp_path):
    text = " site_id ; lon ; lat ; year ; alt_m \n S1 ; 99,25 ; 38,5 ; 2005 ; 1,45 \nS2;99.3;38.2;2006; >2,63 \n"
    t = read_insitu(_write(tmp_path, text, bom=True))
    assert list(t.site_id) == ["S1", "S2"]
    np.testing.assert_allclose(t.lon, [99.25, 99.3])
    np.testing.assert_allclose(t.alt_m, [1.45, 2.63])
    assert list(t.censored) == ["", ">"]


def test_sniff_delimiter():
    assert sniff_delimiter("a;b;c") == ";"
    assert sniff_delimiter("a,b,c") == ","
    assert sniff_delimiter("a\tb\tc") == "\t"


def test_row_level_rejections_carry_row_numbers_and_reasons(tmp_path):
    text = (
        "\n".join(
            [
                "site_id,lon,lat,year,alt_m,censored",
                "A,99.1,38.0,2010,1.5,",  # 2 ok
                "B,abc,38.0,2010,1.5,",  # 3 non-numeric lon
                "C,99.1,38.0,2010,nan,",  # 4 NaN alt
                "D,99.1,38.0,2010,0,",  # 5 alt <= 0
                "E,99.1,38.0,2010,25,",  # 6 alt > 20
                "F,99.1,95.0,2010,1.0,",  # 7 lat out of range
                "G,120.0,38.0,2010,1.0,",  # 8 outside bbox
                "A,99.1,38.0,2010,1.7,",  # 9 duplicate of row 2
                "H,99.1,38.0,2010.5,1.0,",  # 10 fractional year
                "I,99.1,38.0,2011,1.0,?",  # 11 bad censor flag
                "J,99.2,38.1,2011,2.0,>",  # 12 ok, censored
            ]
        )
        + "\n"
    )
    t = read_insitu(_write(tmp_path, text), bbox=(98.8, 37.7, 100.0, 38.4))
    assert list(t.site_id) == ["A", "J"]
    assert list(t.censored) == ["", ">"]
    rows = dict(t.rejected)
    assert sorted(rows) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "lon is not a number" in rows[3]
    assert "NaN" in rows[4]
    assert "outside (0, 20]" in rows[5] and "outside (0, 20]" in rows[6]
    assert "lat 95.0 out of range" in rows[7]
    assert "outside bbox" in rows[8]
    assert "duplicate of row 2" in rows[9]
    assert "whole year" in rows[10]
    assert "censored must be" in rows[11]


def test_missing_columns_named(tmp_path):
    with pytest.raises(GeeAltError, match=r"lacks required column\(s\) year, alt_m"):
        read_insitu(_write(tmp_path, "site_id,lon,lat,thaw\nA,1,2,3\n"))


def test_empty_file_and_no_usable_rows(tmp_path):
    with pytest.raises(GeeAltError, match="is empty"):
        read_insitu(_write(tmp_path, "", name="e.csv"))
    with pytest.raises(GeeAltError, match="is empty"):
        read_insitu(_write(tmp_path, "\n  \n", name="e2.csv"))
    with pytest.raises(GeeAltError, match=r"no usable rows \(2 rejected: row 2: alt_m"):
        read_insitu(_write(tmp_path, "site_id,lon,lat,year,alt_m\nA,1,2,2000,-1\nB,1,2,2000,x\n", name="b.csv"))
    with pytest.raises(GeeAltError, match="not found"):
        read_insitu(tmp_path / "nope.csv")


def test_write_read_roundtrip(tmp_path):
    t = make_insitu_table(
        [
            dict(
                site_id="CN2",
                lon=97.86666666666666,
                lat=34.333333333333336,
                year=2000,
                alt_m=1.39,
                method="T/B35",
                source="CALM",
                homogeneous=None,
                notes="a, b",
            ),
            dict(
                site_id="CN3",
                lon=92.88333333333334,
                lat=34.733333333333334,
                year=2001,
                alt_m=2.63,
                censored=">",
                homogeneous=False,
            ),
        ]
    )
    p = write_insitu(tmp_path / "out" / "t.csv", t)
    back = read_insitu(p)
    assert isinstance(back, InsituTable)
    assert back.df.drop(columns="homogeneous").equals(t.df.drop(columns="homogeneous"))
    assert list(back.homogeneous) == [None, False]
    assert not list((tmp_path / "out").glob(".tmp-*"))
