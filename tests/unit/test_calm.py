"""CALM summary table importer on the real, messy table (copy in tests/data, source noted there)."""

import csv
import re

import numpy as np
import pytest

from gee_alt.errors import GeeAltError
from gee_alt.insitu.calm import CoordError, import_calm, parse_calm_value, parse_coordinate
from helpers import SHARED_DATA, TEST_DATA

LOCAL = TEST_DATA / "CALM_Summary_table.csv"
SHARED = SHARED_DATA / "calm" / "CALM_Summary_table.csv"


@pytest.fixture(scope="module")
def calm():
    return import_calm(LOCAL)


def _site(table, sid):
    d = table.df[table.df.site_id == sid].sort_values("year")
    return d


def test_cn2_fenghuo_shan(calm):
    t, _ = calm
    d = _site(t, "CN2")
    assert np.allclose(d.lat, 34 + 20 / 60) and np.allclose(d.lon, 97 + 52 / 60)
    assert round(d.lat.iloc[0], 4) == 34.3333 and round(d.lon.iloc[0], 4) == 97.8667
    # table row: 8 dashes (1990-1997) then 135 ... 187 cm
    assert list(d.year) == list(range(1998, 2010))
    np.testing.assert_allclose(d.alt_m, np.array([135, 137, 139, 142, 143, 145, 149, 154, 177, 196, 182, 187]) / 100)
    assert set(d.censored) == {""} and d.method.iloc[0] == "T/B35"
    assert "Fenghuo Shan" in d.notes.iloc[0]


def test_cn5_lower_two_rivers_with_censored_and_gap(calm):
    t, _ = calm
    d = _site(t, "CN5")
    assert round(d.lat.iloc[0], 4) == 34.4667 and round(d.lon.iloc[0], 4) == 92.7333
    # 2000-2009: 87;89;89;107;- ;>120 ;122;110;100;119
    assert list(d.year) == [2000, 2001, 2002, 2003, 2005, 2006, 2007, 2008, 2009]
    np.testing.assert_allclose(d.alt_m, np.array([87, 89, 89, 107, 120, 122, 110, 100, 119]) / 100)
    assert list(d.censored) == ["", "", "", "", ">", "", "", "", ""]


def test_censored_values_never_plain(calm):
    t, _ = calm
    cn3 = _site(t, "CN3").set_index("year")
    assert cn3.loc[2001, "censored"] == ">" and cn3.loc[2001, "alt_m"] == pytest.approx(2.63)
    assert cn3.loc[1999, "censored"] == "" and cn3.loc[1999, "alt_m"] == pytest.approx(2.63)
    # every '>'/'<' cell of the raw table is censored in the output
    raw = list(csv.reader(LOCAL.open(encoding="utf-8-sig"), delimiter=";"))
    n_cens = sum(1 for r in raw[2:] for c in r[7:36] if re.match(r"\s*[<>]", c.replace("\xa0", " ")))
    assert (t.df.censored != "").sum() == n_cens == 27
    assert set(t.df.censored) == {"", ">", "<"}


def test_cn6_typo_latitude_parsed_and_reported(calm):
    t, rep = calm
    d = _site(t, "CN6")
    assert round(d.lat.iloc[0], 4) == 31.8167 and round(d.lon.iloc[0], 4) == 91.7333
    assert any(w.endswith("CN6") and "'v'" in why for w, why in rep)
    assert (d.censored == ">").all() and len(d) == 6


def test_every_site_imported_or_reported(calm):
    t, rep = calm
    raw = list(csv.reader(LOCAL.open(encoding="utf-8-sig"), delimiter=";"))
    codes = {re.sub(r"\s+", " ", r[0].replace("\xa0", " ").strip()) for r in raw[2:] if r and r[0].strip()}
    imported = {s.split(" (")[0] for s in t.df.site_id}
    skipped = {w.split(" ", 2)[2] for w, why in rep if "site skipped" in why}
    assert codes == imported | skipped
    assert not imported & skipped
    assert {"CN8", "CN9", "CN10", "CN11", "U41", "U39"} <= skipped
    assert any("U41" in w and "minutes 88 >= 60" in why for w, why in rep)
    # duplicated code U31 kept apart
    assert {"U31", "U31 (Marsh Creek)"} <= set(t.df.site_id)
    assert t.df.duplicated(["site_id", "year"]).sum() == 0


def test_flags_and_junk_reported(calm):
    t, rep = calm
    u18 = _site(t, "U18").set_index("year")
    assert u18.loc[2011, "alt_m"] == pytest.approx(0.98) and "flag '*'" in u18.loc[2011, "notes"]
    assert "flag '*'" not in u18.loc[2005, "notes"]
    assert any("M13 2008" in w and "'1,45'" in why for w, why in rep)  # ambiguous decimal comma
    assert any("R30 A 2013" in w and "no measurement" in why for w, why in rep)  # 'x'
    assert any("R29 B" in w and "possible typo" in why for w, why in rep)  # lon 71 deg next to 129 deg
    assert (t.df.alt_m > 0).all() and (t.df.alt_m <= 20).all()


def test_bbox_keeps_tibetan_plateau_sites():
    t, rep = import_calm(LOCAL, bbox=(90.0, 30.0, 100.0, 36.0))
    assert sorted(set(t.df.site_id)) == ["CN2", "CN3", "CN4", "CN5", "CN6", "CN7"]
    assert any(w.endswith(" U1") and "outside bbox" in why for w, why in rep)
    with pytest.raises(GeeAltError, match="no usable thaw-depth value inside bbox"):
        import_calm(LOCAL, bbox=(98.8667, 37.7772, 99.9617, 38.3314))


@pytest.mark.parametrize(
    "text,axis,expect",
    [
        ("71 19' N", "lat", 71 + 19 / 60),
        ("156 36' W", "lon", -(156 + 36 / 60)),
        ("69 06' N,", "lat", 69.1),
        ("66° 27' N", "lat", 66.45),
        ("69°43'11\u0094 N", "lat", 69 + 43 / 60 + 11 / 3600),
        ("65°11'35\" N", "lat", 65 + 11 / 60 + 35 / 3600),
        ("67 03 56.0 N", "lat", 67 + 3 / 60 + 56 / 3600),
        ("72° 51,42' N ", "lat", 72 + 51.42 / 60),
        ("55°45'2.52\"N", "lat", 55 + 45 / 60 + 2.52 / 3600),
        ("70.2835 N", "lat", 70.2835),
        ("47,68889", "lat", 47.68889),
        ("159° 55'E", "lon", 159 + 55 / 60),
        ("31v 49' N ", "lat", 31 + 49 / 60),
    ],
)
def test_parse_coordinate_formats(text, axis, expect):
    assert parse_coordinate(text, axis)[0] == pytest.approx(expect, abs=1e-12)


@pytest.mark.parametrize(
    "text,axis", [("64° 88' N", "lat"), ("", "lat"), ("71 19' E", "lat"), ("abc", "lon"), ("95 00' N", "lat")]
)
def test_parse_coordinate_rejects(text, axis):
    with pytest.raises(CoordError):
        parse_coordinate(text, axis)


def test_parse_calm_value():
    assert parse_calm_value(" 135\xa0") == (135.0, "", "", "")
    assert parse_calm_value(">263 ") == (263.0, ">", "", "")
    assert parse_calm_value("<66") == (66.0, "<", "", "")
    assert parse_calm_value("98*") == (98.0, "", "*", "")
    assert parse_calm_value("\xa0-")[0] is None and parse_calm_value("- \xa0")[3] == ""
    assert parse_calm_value("X")[0] is None and "no measurement" in parse_calm_value("X")[3]
    assert parse_calm_value("1,45")[0] is None and "ambiguous" in parse_calm_value("1,45")[3]
    assert parse_calm_value("inactive ")[2] == "inactive"


def test_missing_and_empty(tmp_path):
    with pytest.raises(GeeAltError, match="not found"):
        import_calm(tmp_path / "none.csv")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(GeeAltError, match="empty"):
        import_calm(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("Site Code;Name\nA;B\n")
    with pytest.raises(GeeAltError, match="no header row with years"):
        import_calm(tmp_path / "h.csv")


@pytest.mark.skipif(not SHARED.exists(), reason="shared data dir ../shared/data is absent; the local copy is tested")
def test_local_copy_matches_shared_real_file():
    assert SHARED.read_bytes() == LOCAL.read_bytes()
    t, rep = import_calm(SHARED)
    assert len(t) == 2820 and t.df.site_id.nunique() == 235


def test_calm_to_tidy_csv_roundtrip(calm, tmp_path):
    from gee_alt.insitu.table import read_insitu, write_insitu

    t, _ = calm
    back = read_insitu(write_insitu(tmp_path / "calm_tidy.csv", t))
    assert back.rejected == [] and len(back) == len(t)
    assert back.df.drop(columns="homogeneous").equals(t.df.drop(columns="homogeneous"))
