"""Import the CALM summary table (end-of-season thaw depth, cm) into the tidy in-situ schema.

The Circumpolar Active Layer Monitoring (CALM) summary table is ``;``-separated and hand-made:
two header rows (names, then ``LAT``/``LONG`` and the years), coordinates written as
``71 19' N``, ``66° 27' N``, ``69°43'11 N``, ``65°11'35" N``, ``67 03 56.0 N``, ``72° 51,42' N``,
``70.2835 N`` or ``47,68889`` (decimal comma, no hemisphere), with typos (``31v 49' N``,
``64° 88' N``); values ``135``, ``>263`` / ``<66`` (censored), ``98*`` (flagged), ``*``, ``-``,
``X``, ``inactive``, non-breaking and trailing spaces. Please cite CALM when using the data.

:func:`import_calm` returns ``(table, report)``: every site is either in the table or named in
the report with the reason, and every value cell that is not a plain number or a plain
no-data dash is reported too. Rules:

- thaw depth cm → ``alt_m`` = cm / 100;
- ``>263`` → ``alt_m`` 2.63 with ``censored=">"`` (true ALT deeper); ``<66`` → ``censored="<"``;
  never the bare number;
- ``98*`` → 0.98 m with ``notes`` containing ``flag '*'``; a lone ``*`` or ``X``/``x`` carries no
  value and is reported;
- a value with a decimal comma (``1,45``) is ambiguous (cm or m?) and is reported, not imported;
- coordinates with a stray character between numbers (``31v 49' N``) are read as D M with the
  repair reported; minutes or seconds ≥ 60 (``64° 88' N``) make the site unusable (reported);
  without a hemisphere letter N/E is assumed and reported;
- a site code used twice for different sites (``U31``) gets its name appended to stay unique.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from gee_alt.errors import GeeAltError
from gee_alt.insitu.table import InsituTable, clean_cell, make_insitu_table, validate_row

SOURCE = "CALM summary table"
_NUM = re.compile(r"\d+(?:[.,]\d+)?")
# degree/minute/second marks, including U+0093/U+0094 (cp1252 curly quotes mis-decoded as C1 controls)
_SYMBOLS = re.compile("[°º˚'’′\"″“”\u0093\u0094\\s]")
_DASHES = {"", "-", "–", "—"}


class CoordError(ValueError):
    """A coordinate that cannot be read."""


def parse_coordinate(text: str, axis: str) -> tuple[float, list[str]]:
    """Decimal degrees (S/W negative) and repair notes from a CALM coordinate cell.

    ``axis`` is ``"lat"`` or ``"lon"``. Raises :class:`CoordError` with a reason when unreadable.
    """
    s = clean_cell(text).rstrip(",; ")
    notes: list[str] = []
    if not s:
        raise CoordError(f"{axis} is empty")
    hemi = ""
    m = re.search(r"([NSEWnsew])\s*$", s)
    if m:
        hemi = m.group(1).upper()
        s = s[: m.start()].strip()
    if hemi and ((axis == "lat") != (hemi in "NS")):
        raise CoordError(f"{axis} {text.strip()!r} has hemisphere {hemi}")
    nums = _NUM.findall(s)
    left = _SYMBOLS.sub("", _NUM.sub(" ", s))
    if left:
        notes.append(f"{axis} {clean_cell(text)!r}: stray {left!r} read as a separator")
    if not nums or len(nums) > 3:
        raise CoordError(f"{axis} {clean_cell(text)!r} is not degrees[/minutes[/seconds]]")
    vals = [float(n.replace(",", ".")) for n in nums]
    if len(vals) > 1 and vals[0] != int(vals[0]):
        raise CoordError(f"{axis} {clean_cell(text)!r}: fractional degrees followed by minutes")
    for v, unit in zip(vals[1:], ("minutes", "seconds"), strict=False):
        if v >= 60:
            raise CoordError(f"{axis} {clean_cell(text)!r}: {unit} {v:g} >= 60")
    deg = vals[0] + (vals[1] / 60 if len(vals) > 1 else 0) + (vals[2] / 3600 if len(vals) > 2 else 0)
    if deg > (90 if axis == "lat" else 180):
        raise CoordError(f"{axis} {clean_cell(text)!r} out of range")
    if not hemi:
        notes.append(f"{axis} {clean_cell(text)!r}: no hemisphere, {'N' if axis == 'lat' else 'E'} assumed")
    return (-deg if hemi in ("S", "W") else deg), notes


def parse_calm_value(text: str) -> tuple[float | None, str, str, str]:
    """``(thaw_cm or None, censored, flags, problem)`` for one CALM value cell.

    ``problem`` is ``""`` for plain numbers and no-data dashes, else why the cell is reported.
    """
    s = clean_cell(text)
    s = re.sub(r"\s+", " ", s)
    if s in _DASHES or set(s) <= set("- –—"):
        return None, "", "", ""
    if s.lower() == "inactive":
        return None, "", "inactive", ""
    if s.lower() == "x":
        return None, "", "X", f"value {s!r} (no measurement) skipped"
    if s == "*":
        return None, "", "*", "flag '*' without a value skipped"
    m = re.fullmatch(r"([<>])?\s*(\d+(?:[.,]\d+)?)\s*(\*?)", s)
    if not m:
        return None, "", "", f"unreadable value {s!r} skipped"
    cens, num, star = m.groups()
    if "," in num or "." in num:
        return None, "", "", f"value {s!r} has a decimal separator (cm or m?) — ambiguous, skipped"
    return float(num), cens or "", star, ""


def _find_layout(rows: list[list[str]]):
    """(year row index, {col: year}, lat col, lon col) from the header rows."""
    for i, r in enumerate(rows[:6]):
        cells = [clean_cell(c) for c in r]
        years = {j: int(c) for j, c in enumerate(cells) if re.fullmatch(r"(19|20)\d\d", c)}
        if len(years) >= 5:
            up = [c.upper() for c in cells]
            lat = up.index("LAT") if "LAT" in up else 4
            lon = next((j for j, c in enumerate(up) if c in ("LONG", "LON")), 5)
            return i, years, lat, lon
    raise GeeAltError("CALM table: no header row with years (expected 1990;1991;... in the first rows)")


def _stem_consistency(records: list[dict], max_deg: float = 1.0) -> list[tuple[str, str]]:
    """Report plots (``R29 A``, ``R29 B``: code, space, letter) whose coordinates differ from their
    first sibling by > ``max_deg``.

    Such sub-sites are plots of one site a few hundred metres apart, so a jump of degrees is a
    typo (e.g. ``R29 B`` lon 71°25' E next to 129°25' E). They stay imported; the report flags them.
    """
    first: dict[str, tuple[str, float, float]] = {}
    out, done = [], set()
    for rec in records:
        m = re.fullmatch(r"([A-Za-z]+\d+) [A-Za-z]", rec["site_id"])  # plots "R29 A", "R29 B" of one site
        if not m or rec["site_id"] in done:
            continue
        done.add(rec["site_id"])
        stem = m.group(1)
        if stem not in first:
            first[stem] = (rec["site_id"], rec["lon"], rec["lat"])
            continue
        sid, lon0, lat0 = first[stem]
        if abs(rec["lon"] - lon0) > max_deg or abs(rec["lat"] - lat0) > max_deg:
            out.append(
                (
                    rec["site_id"],
                    f"coordinates ({rec['lat']:.4f}, {rec['lon']:.4f}) differ from sibling {sid} "
                    f"({lat0:.4f}, {lon0:.4f}) by more than {max_deg:g} deg: possible typo (imported)",
                )
            )
    return out


def import_calm(path: str | os.PathLike, bbox=None) -> tuple[InsituTable, list[tuple[str, str]]]:
    """Read the CALM summary table into an :class:`InsituTable` plus a report of ``(where, reason)``.

    ``where`` is ``"row N SITE"`` or ``"row N SITE YEAR"`` (N = 1-based file line). ``bbox`` =
    ``(west, south, east, north)`` degrees keeps only sites inside (others reported).
    Raises :class:`GeeAltError` if the file is missing, unreadable or yields no value at all.
    """
    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"CALM table not found: {p}")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if not text.strip():
        raise GeeAltError(f"CALM table is empty: {p}")
    reader = csv.reader(io.StringIO(text), delimiter=";")
    rows, lines = [], []
    for r in reader:
        rows.append(r)
        lines.append(reader.line_num)
    hdr, year_cols, lat_col, lon_col = _find_layout(rows)
    head0 = [clean_cell(c).lower() for c in rows[0]] if hdr > 0 else []
    name_col = next((j for j, c in enumerate(head0) if c == "site name"), 3)
    method_col = next((j for j, c in enumerate(head0) if c == "method"), 6)

    records: list[dict] = []
    report: list[tuple[str, str]] = []
    seen_codes: dict[str, str] = {}
    for r, line in zip(rows[hdr + 1 :], lines[hdr + 1 :], strict=False):

        def cell(j: int, r: list[str] = r) -> str:
            return clean_cell(r[j]) if j < len(r) else ""

        code = re.sub(r"\s+", " ", cell(0))
        if not code and not any(clean_cell(c) for c in r):
            continue
        name = re.sub(r"\s+", " ", cell(name_col))
        where = f"row {line} {code or '?'}"
        if not code:
            report.append((where, f"no site code (site name {name!r}); row skipped"))
            continue
        site_id = code
        if code in seen_codes and seen_codes[code] != name:
            site_id = f"{code} ({name})"
            report.append((where, f"site code {code} also used for {seen_codes[code]!r}; imported as {site_id!r}"))
        seen_codes.setdefault(code, name)
        try:
            lat, n1 = parse_coordinate(cell(lat_col), "lat")
            lon, n2 = parse_coordinate(cell(lon_col), "lon")
        except CoordError as exc:
            report.append((where, f"unusable coordinates: {exc}; site skipped"))
            continue
        if n1 + n2:
            report.append((where, f"coordinate repaired ({lat:.4f}, {lon:.4f}): " + "; ".join(n1 + n2)))
        if bbox is not None:
            w, s, e, n = bbox
            if not (w <= lon <= e and s <= lat <= n):
                report.append((where, f"outside bbox {tuple(bbox)} (lon {lon:.4f}, lat {lat:.4f}); site skipped"))
                continue
        base_notes = [f"{name}" if name else "", "; ".join(x for x in (cell(1), cell(2)) if x)]
        inactive = False
        site_recs = []
        for j, year in sorted(year_cols.items()):
            raw = r[j] if j < len(r) else ""
            cm, cens, flag, problem = parse_calm_value(raw)
            if flag == "inactive":
                inactive = True
                continue
            if problem:
                report.append((f"{where} {year}", problem))
            if cm is None:
                continue
            notes = [x for x in base_notes if x]
            if flag == "*":
                notes.append("flag '*' in source")
            rec_raw = {
                "site_id": site_id,
                "lon": repr(lon),
                "lat": repr(lat),
                "year": str(year),
                "alt_m": repr(cm / 100.0),
                "censored": cens,
                "method": cell(method_col),
                "source": SOURCE,
                "notes": " | ".join(notes),
            }
            try:
                site_recs.append(validate_row(rec_raw))
            except ValueError as exc:
                report.append((f"{where} {year}", f"value {clean_cell(raw)!r} rejected: {exc}"))
        if inactive:
            for rec in site_recs:
                rec["notes"] = (rec["notes"] + " | " if rec["notes"] else "") + "site marked inactive"
        if not site_recs:
            report.append((where, "no thaw-depth value in any year; site skipped"))
        records.extend(site_recs)
    report.extend(_stem_consistency(records))
    if not records:
        raise GeeAltError(
            f"CALM table {p.name}: no usable thaw-depth value"
            + (f" inside bbox {tuple(bbox)}" if bbox is not None else "")
        )
    table = make_insitu_table(records, source_path=str(p))
    return table, report
