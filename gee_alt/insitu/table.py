"""In-situ active-layer thickness: the tidy table, its row-by-row validation, reading and writing.

Tidy schema (one row per site and year; a CSV with a header row):

=============  ========  ==============================================================
column         required  meaning
=============  ========  ==============================================================
site_id        yes       site code (text, e.g. ``CN2``)
lon, lat       yes       WGS84 degrees (east / north positive)
year           yes       year of the end-of-season thaw depth (integer)
alt_m          yes       active-layer thickness in metres (0 < alt_m <= 20)
censored       no        ``""`` exact; ``">"`` true ALT is deeper than ``alt_m`` (probe or
                         tube too short); ``"<"`` true ALT is shallower than ``alt_m``
method         no        measurement method (text, e.g. ``T/B35``)
source         no        where the value came from (text)
homogeneous    no        ``true``/``false``/empty: whether the site is known homogeneous
obs_date       no        ISO date ``YYYY-MM-DD`` the depth was read (in ``year``); empty =
                         end of the thaw season. Calibration sums DDT to this date.
notes          no        free text (flags such as ``*`` from the source table)
=============  ========  ==============================================================

:func:`read_insitu` never stops on a bad row: it collects ``(row_number, reason)`` pairs in
:attr:`InsituTable.rejected` (row numbers are 1-based file line numbers; the header is line 1)
and raises :class:`~gee_alt.errors.GeeAltError` only if nothing usable remains. An ``alt_m``
given as ``">2.63"`` or ``"<0.66"`` is read as a censored value, never as the bare number.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gee_alt.errors import GeeAltError
from gee_alt.io import write_text_atomic

REQUIRED_COLUMNS = ("site_id", "lon", "lat", "year", "alt_m")
OPTIONAL_COLUMNS = ("censored", "method", "source", "homogeneous", "notes", "obs_date")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
CENSOR_FLAGS = ("", ">", "<")
ALT_MAX_M = 20.0
YEAR_RANGE = (1900, 2100)

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass
class InsituTable:
    """Validated in-situ ALT observations.

    ``df`` is a pandas DataFrame with exactly the :data:`COLUMNS` (``homogeneous`` is a nullable
    boolean: True/False/<NA>); ``rejected`` lists ``(row_number, reason)`` for rows left out;
    ``source_path`` is the file read (empty when built in memory).
    """

    df: pd.DataFrame
    rejected: list[tuple[int, str]] = field(default_factory=list)
    source_path: str = ""

    def __len__(self) -> int:
        return len(self.df)

    @property
    def site_id(self) -> np.ndarray:
        return self.df["site_id"].to_numpy(dtype=object)

    @property
    def lon(self) -> np.ndarray:
        return self.df["lon"].to_numpy(dtype=float)

    @property
    def lat(self) -> np.ndarray:
        return self.df["lat"].to_numpy(dtype=float)

    @property
    def year(self) -> np.ndarray:
        return self.df["year"].to_numpy(dtype=int)

    @property
    def alt_m(self) -> np.ndarray:
        return self.df["alt_m"].to_numpy(dtype=float)

    @property
    def censored(self) -> np.ndarray:
        return self.df["censored"].to_numpy(dtype=object)

    @property
    def obs_date(self) -> np.ndarray:
        """Object array of ISO date strings (``""`` = end of the thaw season) per row."""
        return self.df["obs_date"].to_numpy(dtype=object)

    @property
    def homogeneous(self) -> np.ndarray:
        """Object array of True/False/None per row."""
        return np.array([None if pd.isna(v) else bool(v) for v in self.df["homogeneous"]], dtype=object)


def make_insitu_table(
    records: list[dict], rejected: list[tuple[int, str]] | None = None, source_path: str = ""
) -> InsituTable:
    """Build an :class:`InsituTable` from already-validated dicts (missing optional keys filled)."""
    rows = []
    for r in records:
        row = {k: r.get(k, "") for k in COLUMNS}
        row["homogeneous"] = r.get("homogeneous", None)
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df = df.astype({"site_id": object, "lon": float, "lat": float, "alt_m": float})
    df["year"] = df["year"].astype("int64") if len(df) else df["year"].astype("int64")
    df["homogeneous"] = pd.array(
        [None if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v) for v in df["homogeneous"]],
        dtype="boolean",
    )
    for c in ("censored", "method", "source", "notes", "obs_date"):
        df[c] = df[c].fillna("").astype(str)
    return InsituTable(df, list(rejected or []), source_path)


# ---------------------------------------------------------------- parsing helpers (pure)


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a CSV header line: the most frequent of ``;``, ``,``, tab (``,`` on ties)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 0 else ","


def clean_cell(value) -> str:
    """A cell as text with non-breaking spaces normalised and surrounding space stripped."""
    return str(value if value is not None else "").replace("\u00a0", " ").replace("\ufeff", "").strip()


def parse_float(text: str, decimal_comma: bool = False) -> float:
    """A float from text (``decimal_comma`` accepts ``1,45``); raises ValueError when not a number."""
    s = clean_cell(text)
    if decimal_comma and "," in s and "." not in s:
        s = s.replace(",", ".")
    v = float(s)  # ValueError on junk
    return v


def parse_censored_value(text: str, decimal_comma: bool = False) -> tuple[float, str]:
    """``">2.63"`` -> ``(2.63, ">")``; ``"1.2"`` -> ``(1.2, "")``; ValueError when not a number."""
    s = clean_cell(text)
    flag = ""
    if s[:1] in (">", "<"):
        flag, s = s[0], s[1:].strip()
    return parse_float(s, decimal_comma), flag


def parse_bool(text: str):
    """``true/yes/1`` -> True, ``false/no/0`` -> False, empty -> None; ValueError otherwise."""
    s = clean_cell(text).lower()
    if s == "":
        return None
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def validate_row(raw: dict, bbox=None, decimal_comma: bool = False) -> dict:
    """Validate one raw row (column -> text); returns the typed record or raises ValueError(reason).

    ``bbox`` is ``(west, south, east, north)`` in degrees, inclusive.
    """
    rec: dict = {}
    sid = clean_cell(raw.get("site_id", ""))
    if not sid:
        raise ValueError("empty site_id")
    rec["site_id"] = sid
    for col in ("lon", "lat"):
        try:
            rec[col] = parse_float(raw.get(col, ""), decimal_comma)
        except ValueError:
            raise ValueError(f"{col} is not a number: {clean_cell(raw.get(col, ''))!r}") from None
        if not math.isfinite(rec[col]):
            raise ValueError(f"{col} is NaN or infinite")
    if not -90.0 <= rec["lat"] <= 90.0:
        raise ValueError(f"lat {rec['lat']} out of range -90..90")
    if not -180.0 <= rec["lon"] <= 180.0:
        raise ValueError(f"lon {rec['lon']} out of range -180..180")
    try:
        y = parse_float(raw.get("year", ""), decimal_comma)
    except ValueError:
        raise ValueError(f"year is not a number: {clean_cell(raw.get('year', ''))!r}") from None
    if not math.isfinite(y) or y != int(y) or not YEAR_RANGE[0] <= y <= YEAR_RANGE[1]:
        raise ValueError(
            f"year {clean_cell(raw.get('year', ''))!r} is not a whole year in {YEAR_RANGE[0]}..{YEAR_RANGE[1]}"
        )
    rec["year"] = int(y)
    try:
        alt, flag = parse_censored_value(raw.get("alt_m", ""), decimal_comma)
    except ValueError:
        raise ValueError(f"alt_m is not a number: {clean_cell(raw.get('alt_m', ''))!r}") from None
    if not math.isfinite(alt):
        raise ValueError("alt_m is NaN or infinite")
    if not 0.0 < alt <= ALT_MAX_M:
        raise ValueError(f"alt_m {alt} outside (0, {ALT_MAX_M:g}] m")
    cflag = clean_cell(raw.get("censored", ""))
    if cflag not in CENSOR_FLAGS:
        raise ValueError(f"censored must be empty, '>' or '<', got {cflag!r}")
    if flag and cflag and flag != cflag:
        raise ValueError(f"alt_m says {flag!r} but censored says {cflag!r}")
    rec["alt_m"] = alt
    rec["censored"] = flag or cflag
    try:
        rec["homogeneous"] = parse_bool(raw.get("homogeneous", ""))
    except ValueError:
        raise ValueError(
            f"homogeneous must be true/false/empty, got {clean_cell(raw.get('homogeneous', ''))!r}"
        ) from None
    for c in ("method", "source", "notes"):
        rec[c] = clean_cell(raw.get(c, ""))
    rec["obs_date"] = ""
    od = clean_cell(raw.get("obs_date", ""))
    if od:
        import datetime as dt

        try:
            day = dt.date.fromisoformat(od[:10])
        except ValueError:
            raise ValueError(f"obs_date must be an ISO date YYYY-MM-DD, got {od!r}") from None
        if day.year != int(rec["year"]):
            raise ValueError(f"obs_date {od} is not in the row's year {rec['year']}")
        rec["obs_date"] = day.isoformat()
    if bbox is not None:
        w, s, e, n = bbox
        if not (w <= rec["lon"] <= e and s <= rec["lat"] <= n):
            raise ValueError(
                f"outside bbox: lon {rec['lon']:g}, lat {rec['lat']:g} not in {w:.4f}..{e:.4f} E, {s:.4f}..{n:.4f} N"
            )
    return rec


def _decode(data: bytes, name: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with BOM (spreadsheet exports)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:4096]:
        raise GeeAltError(
            f"{name} is not a text CSV file (it holds binary data); "
            f"give a CSV with columns {', '.join(REQUIRED_COLUMNS)}"
        )
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise GeeAltError(f"{name}: cannot decode text")  # pragma: no cover (latin-1 decodes anything)


def parse_insitu_text(text: str, bbox=None, name: str = "in-situ table") -> InsituTable:
    """Parse and validate the text of a tidy in-situ CSV (see the module docstring)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise GeeAltError(f"{name} is empty; expected a CSV with columns {', '.join(REQUIRED_COLUMNS)}")
    first_line = next(line for line in text.splitlines() if line.strip())
    delim = sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    header = None
    for row in reader:
        if any(clean_cell(c) for c in row):
            header = [clean_cell(c).lower() for c in row]
            break
    missing = [c for c in REQUIRED_COLUMNS if c not in (header or [])]
    if missing:
        found = ", ".join(h for h in (header or []) if h)
        found = "".join(ch if ch.isprintable() else "?" for ch in found)
        found = found if len(found) <= 80 else found[:77] + "..."
        raise GeeAltError(
            f"{name} lacks required column(s) {', '.join(missing)} (found: {found or 'none'}); "
            "the header must name them, separated by ',' or ';'"
        )
    idx = {h: i for i, h in enumerate(header) if h}
    records, rejected, seen = [], [], {}
    for row in reader:
        line = reader.line_num
        if not any(clean_cell(c) for c in row):
            continue
        raw = {k: (row[i] if i < len(row) else "") for k, i in idx.items()}
        try:
            rec = validate_row(raw, bbox=bbox, decimal_comma=(delim != ","))
        except ValueError as exc:
            rejected.append((line, str(exc)))
            continue
        key = (rec["site_id"], rec["year"])
        if key in seen:
            rejected.append((line, f"duplicate of row {seen[key]} (site_id {key[0]}, year {key[1]})"))
            continue
        seen[key] = line
        records.append(rec)
    if not records:
        first = f": row {rejected[0][0]}: {rejected[0][1]}" if rejected else ""
        raise GeeAltError(
            f"{name} has no usable rows ({len(rejected)} rejected{first}); "
            "fix the rows or the columns (site_id, lon, lat, year, alt_m in m, WGS84 degrees)"
        )
    return make_insitu_table(records, rejected)


def read_insitu(path: str | os.PathLike, bbox=None) -> InsituTable:
    """Read and validate a tidy in-situ ALT CSV (``,`` or ``;``; UTF-8 with or without BOM).

    ``bbox`` = ``(west, south, east, north)`` degrees keeps only sites inside (others rejected
    with a reason). Raises :class:`GeeAltError` when the file is missing or empty, lacks a
    required column, or leaves no usable row.
    """
    p = Path(path)
    if p.is_dir():
        raise GeeAltError(f"in-situ table {p} is a directory, not a file; give the CSV file")
    if not p.is_file():
        raise GeeAltError(f"in-situ table not found: {p}")
    table = parse_insitu_text(_decode(p.read_bytes(), p.name), bbox=bbox, name=p.name)
    table.source_path = str(p)
    return table


def format_insitu_csv(table: InsituTable) -> str:
    """The table as tidy CSV text (``,``-separated, header, ``homogeneous`` as true/false/empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for rec in table.df.to_dict("records"):
        h = rec["homogeneous"]
        rec["homogeneous"] = "" if h is None or pd.isna(h) else ("true" if h else "false")
        rec["lon"], rec["lat"], rec["alt_m"] = (repr(float(rec[k])) for k in ("lon", "lat", "alt_m"))
        w.writerow([rec[c] for c in COLUMNS])
    return buf.getvalue()


def write_insitu(path: str | os.PathLike, table: InsituTable) -> Path:
    """Write ``table`` as tidy CSV atomically (readable back by :func:`read_insitu`)."""
    return write_text_atomic(path, format_insitu_csv(table))
