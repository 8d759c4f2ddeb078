"""The run report: ``RUN/report/report.md``, a self-contained ``report.html`` and PNG figures.

The report is built once as a list of blocks (heading, paragraph, banner, table, figure) and
rendered twice — to Markdown (figures linked) and to HTML (figures embedded as base64) — so
the two always say the same thing. No timestamps: the same run gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gee_alt import __version__, runs
from gee_alt.errors import GeeAltError
from gee_alt.io import write_bytes_atomic, write_text_atomic
from gee_alt.viz import figures
from gee_alt.viz.palettes import PRODUCTS

# ---------------------------------------------------------------- blocks


@dataclass
class Block:
    """One report element: ``kind`` in heading/para/banner/table/figure."""

    kind: str
    text: str = ""
    level: int = 2
    header: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    png: bytes = b""
    file: str = ""


def fmt(v) -> str:
    """A table cell: floats to 4 significant digits, NaN/None as an en dash, lists bracketed."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "–" if not math.isfinite(float(v)) else f"{float(v):.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {fmt(x)}" for k, x in v.items())
    return str(v)


def metrics_table(by_row: dict, row_title: str = "stage") -> tuple[list[str], list[list]]:
    """``{row: {metric: value}}`` → (header, rows); columns are the union of metric names in order."""
    cols: list[str] = []
    for m in by_row.values():
        for k in m if isinstance(m, dict) else {"value": m}:
            if k not in cols:
                cols.append(k)
    rows = []
    for name, m in by_row.items():
        m = m if isinstance(m, dict) else {"value": m}
        rows.append([name] + [m.get(c) for c in cols])
    return [row_title] + cols, rows


# ---------------------------------------------------------------- rendering


def _md_cell(v) -> str:
    return fmt(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block]) -> str:
    """Markdown of the blocks (figures as relative links to ``block.file``)."""
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append("#" * b.level + " " + b.text)
        elif b.kind == "para":
            out.append(b.text)
        elif b.kind == "banner":
            out.append(f"> **⚠ {b.text}**")
        elif b.kind == "table":
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows)
        elif b.kind == "figure":
            out.append(f"![{b.text}]({b.file})")
            out.append(f"*{b.text}*")
        out.append("")
    return "\n".join(out)


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:960px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f2f2f2}.banner{background:#b30000;color:#fff;font-weight:bold;font-size:1.25em;padding:.6em 1em;
border-radius:4px}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-style:italic;color:#555}code{background:#f4f4f4;padding:0 .2em}"""


def render_html(blocks: list[Block], title: str) -> str:
    """A self-contained HTML page of the blocks (figures embedded as base64 PNG data URLs)."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if b.kind == "heading":
            out.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif b.kind == "para":
            out.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "banner":
            out.append(f'<div class="banner" role="alert">⚠ {e(b.text)}</div>')
        elif b.kind == "table":
            out.append(
                "<table><thead><tr>" + "".join(f"<th>{e(fmt(h))}</th>" for h in b.header) + "</tr></thead><tbody>"
            )
            out.extend("<tr>" + "".join(f"<td>{e(fmt(c))}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append("</tbody></table>")
        elif b.kind == "figure":
            data = base64.b64encode(b.png).decode("ascii")
            out.append(
                f'<figure><img alt="{e(b.text)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(b.text)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- content


def calibration_blocks(cal: dict | None) -> list[Block]:
    """Calibration section: E with CI, pairs used/dropped, drop reasons, dropped sites, LOO scores."""
    bl = [Block("heading", "Stefan calibration")]
    if not cal:
        return bl + [Block("para", f"No {runs.CALIBRATION} in this run.")]
    units = cal.get("E_units", "m (°C·day)^-½").replace("degC day", "°C·day")
    ci = cal.get("E_ci95") or [None, None]
    rows = [
        ["E", cal.get("E"), units],
        ["E 95 % CI", f"{fmt(ci[0])} – {fmt(ci[1])}", units],
        ["pairs used", cal.get("n_used"), ""],
        ["pairs dropped", cal.get("n_dropped"), ""],
    ]
    for k, label in (("n_sites", "sites"), ("sigma_m", "residual sd"), ("censoring", "censoring")):
        if k in cal:
            rows.append([label, cal[k], "m" if k == "sigma_m" else ""])
    bl.append(Block("table", header=["quantity", "value", "units"], rows=rows))
    if cal.get("drop_reasons"):
        bl.append(Block("para", "Dropped calibration pairs by reason:"))
        bl.append(Block("table", header=["reason", "pairs"], rows=[[k, v] for k, v in cal["drop_reasons"].items()]))
    dropped = cal.get("dropped_sites") or cal.get("dropped")
    if isinstance(dropped, list) and dropped:
        bl.append(Block("para", "Dropped sites:"))
        bl.append(
            Block(
                "table",
                header=["site", "reason"],
                rows=[
                    [d.get("site_id", "?"), d.get("reason", "")] if isinstance(d, dict) else [d, ""] for d in dropped
                ],
            )
        )
    if cal.get("loo"):
        bl.append(
            Block("para", "Leave-one-site-out cross-validation of the calibration (bias = predicted − observed):")
        )
        h, r = metrics_table({"leave-one-site-out": cal["loo"]}, "scheme")
        bl.append(Block("table", header=h, rows=r))
    dch = cal.get("disturbance_choice") or {}
    if "loo_rmse_one_e_m" in dch:
        ci_d = dch.get("ci95") or [None, None]
        d_with, d_one = (
            dch.get("loo_rmse_disturbed_rows_with_disturbed_e_m"),
            dch.get("loo_rmse_disturbed_rows_one_e_m"),
        )
        used = (
            "used: a pixel-year at or after its disturbance start year carries it, earlier years and undisturbed "
            "pixels the E fitted on undisturbed site-years (alt/e_source.tif band 2 = the year it starts)"
            if dch.get("used")
            else "not used (it does not lower the leave-one-site-out error)"
        )
        bl.append(
            Block(
                "para",
                f"E of disturbed ground ({cal.get('disturbance_file') or 'MINES'}): "
                f"{fmt(dch.get('E_partial_pooled'))} (95 % t-interval {fmt(ci_d[0])} – {fmt(ci_d[1])}; raw "
                f"{fmt(dch.get('E_raw'))}, shrinkage B {fmt(dch.get('shrinkage_B'))}) from {dch.get('n_sites')} "
                f"sites, {dch.get('n_site_years')} disturbed site-years; {used}. Leave-one-site-out RMSE "
                f"{fmt(dch.get('loo_rmse_with_disturbed_e_m'))} m with it vs {fmt(dch.get('loo_rmse_one_e_m'))} m "
                f"with one E for all ground (disturbed site-years: {fmt(d_with)} vs {fmt(d_one)} m).",
            )
        )
    elif dch.get("reason"):
        bl.append(Block("para", f"E of disturbed ground ({cal.get('disturbance_file') or 'MINES'}): {dch['reason']}."))
    choice = cal.get("class_choice") or {}
    if choice.get("by_class"):
        used = "used" if choice.get("used") else "not used (it does not lower the leave-one-site-out error)"
        bl.append(
            Block(
                "para",
                f"Per-class E (partial pooling toward the pooled E) is {used}: leave-one-site-out RMSE "
                f"{fmt(choice.get('loo_rmse_by_class_m'))} m by class vs {fmt(choice.get('loo_rmse_pooled_m'))} m "
                "pooled. Pixels of classes without their own E carry the pooled E (alt/e_source.tif = 0).",
            )
        )
        ci_cls = cal.get("E_ci_by_class") or {}
        rows = []
        for k, v in choice["by_class"].items():
            ci_k = ci_cls.get(k) or [None, None]
            rows.append(
                [
                    k,
                    v.get("n_sites"),
                    v.get("E_partial_pooled"),
                    f"{fmt(ci_k[0])} – {fmt(ci_k[1])}",
                    v.get("loo_rmse_by_class_m"),
                    v.get("loo_rmse_pooled_m"),
                ]
            )
        bl.append(
            Block(
                "table",
                header=["class", "sites", "E", "95 % CI", "LOO RMSE class E (m)", "LOO RMSE pooled E (m)"],
                rows=rows,
            )
        )
    for w in cal.get("warnings") or []:
        bl.append(Block("para", f"Warning: {w}"))
    if cal.get("alt_sd_definition"):
        bl.append(Block("para", f"ALT uncertainty maps: {cal['alt_sd_definition']}."))
    return bl


def validation_blocks(val: dict | None) -> list[Block]:
    """Validation section: in-situ metrics from the pairs, plus any other metric tables."""
    from gee_alt.science.stefan import cv_metrics
    from gee_alt.viz.runview import insitu_pairs

    bl = [Block("heading", "Validation")]
    if not val:
        return bl + [Block("para", f"No {runs.VALIDATION} in this run.")]
    pairs = insitu_pairs(val)
    if pairs is not None:
        h, r = metrics_table({"in-situ sites": cv_metrics(pairs["pred"], pairs["obs"])}, "comparison")
        bl.append(Block("para", "Predicted vs observed in-situ ALT (bias = predicted − observed):"))
        bl.append(Block("table", header=h, rows=r))
    for key, v in val.items():
        if key in ("insitu", "truth", "scene") or not isinstance(v, dict) or not v:  # truth: in the extra table
            continue
        nested = all(isinstance(x, dict) for x in v.values())
        h, r = metrics_table(v if nested else {key: v}, key if nested else "comparison")
        bl.append(Block("para", f"{key}:"))
        bl.append(Block("table", header=h, rows=r))
    return bl


def permafrost_blocks(trend: dict | None) -> list[Block]:
    """Permafrost extent per year (frost number rule) and its trend, from ``trend.json``."""
    ext = (trend or {}).get("permafrost_extent")
    if not ext:
        return []
    tr = ext["area_trend_km2_per_yr"]
    prob = ext.get("probabilistic")
    rule = str(ext.get("rule", ""))
    if rule.startswith("user"):
        how = "Permafrost from the user's permafrost map (static over the years)"
    elif rule.startswith("class map"):
        how = (
            "Permafrost where the presence probability ≥ 0.5 (class map); the probability is a penalised logistic "
            "regression of drill-hole presence on the surface frost number √DDF/(√DDF+√DDT) ("
            + str(ext.get("frost_number") or "single-year frost number")
            + ") and the static terrain and vegetation predictors. The area to quote is the expected area, the sum "
            "of the probabilities (Gruber 2012), with its 95 % CI from a bootstrap over the holes: the class map's "
            "area is biased where the classes overlap"
        )
    else:
        how = (
            f"Permafrost where the surface frost number √DDF/(√DDF+√DDT) ≥ {ext['frost_number_min']:g} "
            "(DDF: the winter before the thaw season; "
            + str(ext.get("frost_number") or "single-year frost number")
            + ")"
        )
    if prob:
        ptr = prob["area_trend_km2_per_yr"]
        how += (
            f". Expected-area trend (Theil–Sen): {fmt(ptr['slope'])} km²/yr [{fmt(ptr['slope_lo'])}, "
            f"{fmt(ptr['slope_hi'])}], Mann–Kendall p = {fmt(ptr['p_value'])}"
        )
        header = [
            "year",
            "expected area, Σ probability (km²)",
            "95 % CI (km²)",
            "class map area (km²)",
            "class map share (%)",
        ]
        rows = [
            [y, f"{pa:.2f}", f"{ci[0]:.2f}–{ci[1]:.2f}", f"{a:.2f}", f"{100 * f:.1f}"]
            for y, pa, ci, a, f in zip(
                ext["years"], prob["area_km2"], prob["area_km2_ci95"], ext["area_km2"], ext["fraction"], strict=True
            )
        ]
    else:
        header = ["year", "permafrost area (km²)", "share of mapped area (%)"]
        rows = [
            [y, f"{a:.2f}", f"{100 * f:.1f}"]
            for y, a, f in zip(ext["years"], ext["area_km2"], ext["fraction"], strict=True)
        ]
    return [
        Block("heading", "Permafrost extent"),
        Block(
            "para",
            how + "; ALT is mapped, averaged and trended on permafrost "
            f"pixels only. Class-map extent trend (Theil–Sen): {fmt(tr['slope'])} km²/yr "
            f"[{fmt(tr['slope_lo'])}, {fmt(tr['slope_hi'])}], Mann–Kendall p = {fmt(tr['p_value'])}.",
        ),
        Block("table", header=header, rows=rows),
    ]


def extra_blocks(extra: dict | None) -> list[Block]:
    """Tables of the caller's ``extra`` dict (e.g. the demo's truth comparison: stage → metrics)."""
    if not extra:
        return []
    bl = [Block("heading", "Additional results")]
    for title, v in extra.items():
        bl.append(Block("heading", str(title), level=3))
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            h, r = metrics_table(v)
        elif isinstance(v, dict):
            h, r = ["quantity", "value"], [[k, x] for k, x in v.items()]
        else:
            h, r = ["value"], [[v]]
        bl.append(Block("table", header=h, rows=r))
    return bl


def figure_blocks(view, year: int, synthetic: bool) -> list[Block]:
    """Render the figures that the run's products allow (missing products are skipped); ``view``
    is a :class:`~gee_alt.viz.runview.RunView`."""
    from gee_alt.viz.runview import insitu_pairs, load_json

    out: list[Block] = []

    def add(name: str, caption: str, fig) -> None:
        out.append(Block("figure", caption, png=figures.png_bytes(fig), file=name))

    alt = view.layer("alt", year)
    add(
        f"alt_map_{year}.png",
        f"Active-layer thickness (m), {year}",
        figures.map_figure(alt.data, alt.grid, "alt", title=f"Active-layer thickness {year}", synthetic=synthetic),
    )
    sd = view.layer("alt_sd", year)
    if sd is not None:
        add(
            f"alt_sd_map_{year}.png",
            f"ALT uncertainty (1σ, m), {year}",
            figures.map_figure(sd.data, sd.grid, "alt_sd", title=f"ALT uncertainty (1σ) {year}", synthetic=synthetic),
        )
    series = view.alt_series()
    if series and len(series["years"]) >= 2:
        add(
            "alt_series.png",
            "Area-mean ALT per year with its 95 % uncertainty band",
            figures.series_figure(series, synthetic=synthetic),
        )
    pairs = insitu_pairs(load_json(view.run, runs.VALIDATION))
    if pairs is not None and np.isfinite(pairs["obs"]).any():
        add(
            "validation_scatter.png",
            "Observed vs predicted in-situ ALT",
            figures.scatter_figure(pairs["obs"], pairs["pred"], synthetic=synthetic),
        )
    tr, tp = view.layer("trend"), view.layer("trend_p")
    if tr is not None:
        sig = (tp.data < 0.05) if tp is not None else None
        add(
            "trend_map.png",
            "ALT trend (Theil–Sen, cm/yr); dots: Mann–Kendall p < 0.05",
            figures.map_figure(
                tr.data, tr.grid, "trend", title="ALT trend (Theil–Sen)", sig_mask=sig, synthetic=synthetic
            ),
        )
    ddt = view.layer("ddt", year)
    if ddt is not None:
        add(
            f"ddt_map_{year}.png",
            f"Thawing degree-days (°C·day), {year}",
            figures.map_figure(ddt.data, ddt.grid, "ddt", title=f"Thawing degree-days {year}", synthetic=synthetic),
        )
    return out


def applicability_blocks(app: dict | None) -> list[Block]:
    """Area of applicability and the map-error estimate (``applicability.json``)."""
    if not app or "map_error" not in app:
        return []
    me = app["map_error"]
    rows = [
        [
            "map RMSE estimate" + (" — a lower bound" if me.get("lower_bound") else ""),
            fmt(me["rmse_m"]),
            "m",
        ],
        ["  method", str(me.get("method") or "AOA-stratified"), ""],
        ["  inside the area of applicability", fmt(me["rmse_inside_m"]), "m"],
        ["  outside it", fmt(me["rmse_outside_m"]), "m"],
        ["share of pixel-years outside", fmt(me["outside_fraction"]), ""],
        ["dissimilarity-index threshold", fmt(app["threshold_di"]), ""],
    ]
    rows += [
        [f"land-cover class {k}: share outside", fmt(v), ""] for k, v in (app.get("outside_by_class") or {}).items()
    ]
    if me.get("unsampled_classes"):
        rows.append(["share of the mapped pixels on classes without any site", fmt(me["unsampled_fraction"]), ""])
    caveat = (
        [
            Block(
                "para",
                "Land-cover classes "
                + ", ".join(str(k) for k in me["unsampled_classes"])
                + " have no calibration site: their E is carried over from other ground, and no cross-validation "
                "of the sites can measure the error there. "
                + (
                    "The map RMSE above is therefore a lower bound."
                    if me.get("lower_bound")
                    else "The error there is model-based, not measured: the upper confidence limit of the "
                    f"between-class variance of E (see {runs.APPLICABILITY_JSON}, map_error.extrapolation)."
                ),
            )
        ]
        if me.get("unsampled_classes")
        else []
    )
    return [
        Block("heading", "Where the calibration applies (map error, not site error)"),
        Block("table", header=["quantity", "value", "units"], rows=rows),
        Block(
            "para",
            "Area of applicability after Meyer & Pebesma (2021) from " + ", ".join(app["predictors"]) + "; "
            f"inside: {me['inside_from']}; outside: {me['outside_from']}. The leave-one-site-out error above is "
            "the error at the sites, not the map's: sites sit where people can reach. Layer: "
            + runs.AOA_TIF
            + " (band 1 dissimilarity index, band 2 inside 1/0, band 3 the pixel's expected RMS error of E); ALT sd "
            "inflated outside "
            f"({app.get('alt_sd_outside', '')}).",
        ),
        *caveat,
    ]


def disturbance_blocks(res: dict | None, synthetic: bool) -> list[Block]:
    """The BACI disturbance analysis (``disturbance.json``): a table (thaw index, permafrost
    presence, ALT where permafrost persists) and the impact/control figure."""
    from gee_alt.cli.disturbance_commands import QUANTITY_LABELS

    if not res or "effect_alt_m" not in res:
        return []
    qs = res.get("quantities") or {}
    errs = res.get("quantity_errors") or {}
    rows = []
    for name, (label, units, _dig) in QUANTITY_LABELS.items():
        q = qs.get(name)
        if q is None:
            if name in errs:
                rows.append([f"effect on {label}", "none", errs[name], units])
            continue
        ci = q.get("effect_ci95") or [None, None]
        rows.append(
            [
                f"effect on {label} ({q['impact_pixels_used']} impact px, {q['control_pixels']} controls)",
                fmt(q["effect"]),
                f"{fmt(ci[0])} – {fmt(ci[1])}",
                units,
            ]
        )
    if not qs and res.get("effect_alt_m") is not None:  # a disturbance.json written before the quantities
        ci = res.get("effect_alt_ci95_m") or [None, None]
        rows.append(["effect on ALT", fmt(res["effect_alt_m"]), f"{fmt(ci[0])} – {fmt(ci[1])}", "m"])
    if res.get("effect_trend_cm_per_yr") is not None:
        tc = res["effect_trend_ci95_cm_per_yr"]
        rows.append(
            ["change of ALT trend", fmt(res["effect_trend_cm_per_yr"]), f"{fmt(tc[0])} – {fmt(tc[1])}", "cm/yr"]
        )
    d = res.get("design", {})
    m = res.get("matched_on", {})
    matched = (" (ALT pixels matched on: " + ", ".join(f"{k} {v}" for k, v in m.items()) + ")") if m else ""
    bl = [
        Block("heading", "Disturbance (before/after–control/impact)"),
        Block("table", header=["quantity", "estimate", "95 % CI", "units"], rows=rows),
        Block(
            "para",
            f"Before {res['before'][0]}–{res['before'][-1]}, after {res['after'][0]}–{res['after'][-1]}; "
            f"{res['impact_pixels']} disturbed pixels; control pixels at ≥ {fmt(d.get('buffer_m'))} m from any "
            f"disturbance, matched on elevation band ({fmt(d.get('elev_band_m'))} m), aspect class and land "
            f"cover{matched}. Each quantity compares the same pixels before and after: the thaw index and "
            "permafrost presence every disturbed pixel, ALT only pixels (impact and control) with permafrost in "
            "every year of both periods, so the loss of permafrost shows in the presence row, not in the ALT row. "
            f"CI: {res.get('ci_method', '')}.",
        ),
        *([Block("para", "Warning: " + res["warning"] + ".")] if res.get("warning") else []),
        Block(
            "figure",
            "Disturbed pixels and their matched controls: thaw index, permafrost presence, ALT",
            png=figures.png_bytes(figures.disturbance_figure(res, synthetic=synthetic)),
            file="disturbance_series.png",
        ),
    ]
    return bl


def build_blocks(view, *, synthetic: bool, extra: dict | None, year: int) -> list[Block]:
    """All report blocks, in reading order (``view``: a :class:`~gee_alt.viz.runview.RunView`)."""
    from gee_alt.grid import pixel_size
    from gee_alt.viz.runview import load_json

    run, years = view.run, view.years
    grid = view.layer("alt", year).grid
    bl = [Block("heading", f"gee-alt run report: {run.name}", level=1)]
    if synthetic:
        bl.append(
            Block(
                "banner",
                figures.SYNTHETIC_LABEL + ". Every map and score below comes from a simulated "
                "scene and simulated sites.",
            )
        )
    w, h = grid["shape_2d"]
    bl.append(
        Block(
            "table",
            header=["run", "value"],
            rows=[
                ["years", f"{years[0]}–{years[-1]} ({len(years)})"],
                ["map year shown", year],
                ["grid", f"{w} × {h} px, {pixel_size(grid):g} CRS units/px, {grid['crs']}"],
                ["method", "ALT = E·√DDT (Stefan); DDT from random-forest-downscaled MODIS LST"],
                ["gee-alt version", __version__],
            ],
        )
    )
    bl += calibration_blocks(load_json(run, runs.CALIBRATION))
    bl += validation_blocks(load_json(run, runs.VALIDATION))
    bl += permafrost_blocks(_trend_json(run))
    bl += extra_blocks(extra)
    bl += applicability_blocks(load_json(run, runs.APPLICABILITY_JSON))
    bl += disturbance_blocks(load_json(run, runs.DISTURBANCE_JSON), synthetic)
    bl.append(Block("heading", "Figures"))
    bl += figure_blocks(view, year, synthetic)
    bl.append(
        Block(
            "para",
            "Units: ALT and its uncertainty in m, DDT in °C·day, trend in cm/yr. "
            "Colour ranges: 2–98 % of each map. Palettes: "
            + ", ".join(f"{p.label}: {p.cmap}" for p in PRODUCTS.values() if p.key != "lst")
            + ".",
        )
    )
    return bl


def _trend_json(run) -> dict | None:
    import json

    p = runs.trend_json_path(run)
    try:
        return json.loads(p.read_text()) if p.exists() else None
    except (OSError, ValueError):
        return None


TRUTH_TABLE_TITLE = "Demo scene against its synthetic truth"


def write_report_files(
    run_dir, *, synthetic: bool | None = None, extra: dict | None = None, year: int | None = None, view=None
) -> dict:
    """Write the report and its figures; returns ``{"markdown", "html", "figures": [paths]}``.

    ``view``: a :class:`~gee_alt.viz.runview.RunView` holding layers already in memory (the
    pipeline passes its maps, so nothing is read back); default: read from ``run_dir``.
    """
    from gee_alt.viz.runview import RunView, is_synthetic, pick_year

    run = Path(run_dir)
    if not run.is_dir():
        raise GeeAltError(f"run directory not found: {run}")
    year = pick_year(run, year)
    syn = is_synthetic(run, synthetic)
    validation = runs.read_json(run, runs.VALIDATION) or {}
    truth = validation.get("truth_table")
    if extra is None and truth:  # a demo run: its scores against the synthetic truth
        world = (validation.get("scene") or {}).get("world")
        extra = {TRUTH_TABLE_TITLE + (f" ({world} world)" if world else ""): truth}
    blocks = build_blocks(view or RunView(run), synthetic=syn, extra=extra, year=year)
    out = run / runs.REPORT_DIR
    figs = []
    for b in blocks:
        if b.kind == "figure":
            figs.append(write_bytes_atomic(out / b.file, b.png))
    md_path, html_path = runs.report_paths(run)
    md = write_text_atomic(md_path, render_markdown(blocks))
    page = write_text_atomic(html_path, render_html(blocks, f"gee-alt report: {run.name}"))
    return {"markdown": md, "html": page, "figures": figs}


def write_report(run_dir, *, synthetic: bool | None = None, extra: dict | None = None, view=None) -> Path:
    """Write ``RUN/report/report.md``, ``report.html`` (self-contained) and PNG figures.

    ``synthetic``: label the report as a synthetic demo (default: from the COG tags
    ``synthetic=1``). ``extra``: more tables, ``{title: {row: {metric: value}}}`` or
    ``{title: {metric: value}}``. Returns the Markdown path.
    """
    return write_report_files(run_dir, synthetic=synthetic, extra=extra, view=view)["markdown"]


def write_readme_figure(run_dir, out_png, year: int | None = None) -> Path:
    """One ~1200 x 500 px PNG for the README: ALT map of the last (or ``year``) year and the ALT series."""
    from gee_alt.viz.runview import alt_series, is_synthetic, load_layer, pick_year

    run = Path(run_dir)
    if not run.is_dir():
        raise GeeAltError(f"run directory not found: {run}")
    year = pick_year(run, year)
    alt = load_layer(run, "alt", year)
    fig = figures.readme_figure(alt.data, alt.grid, year, alt_series(run), synthetic=is_synthetic(run))
    return write_bytes_atomic(out_png, figures.png_bytes(fig))
