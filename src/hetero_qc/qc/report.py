"""The self-contained HTML report of a QC run: verdicts, the cut-offs, a group strip plot, mosaics."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hetero_qc.qc.scoring import ScoredScan
from hetero_qc.qc.verdict import BLURRED, DEGRADED, EXCLUDE, OK, Cutoffs

COLOURS = {OK: "#2e7d32", DEGRADED: "#ef6c00", BLURRED: "#6a1b9a", EXCLUDE: "#c62828"}


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def mosaic(scan: ScoredScan) -> str:
    """Input, sigma_r over the input, CGM probability and sigma_s on the sagittal mid-slice."""
    figure, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    s = scan.slices
    axes[0].imshow(s["input"].T, cmap="gray", origin="lower")
    axes[1].imshow(s["input"].T, cmap="gray", origin="lower")
    axes[1].imshow(s["sigma"].T, cmap="magma", origin="lower", alpha=0.6)
    axes[2].imshow(s["cgm"].T, cmap="viridis", origin="lower", vmin=0, vmax=1)
    axes[3].imshow(s["sigma_seg"].T, cmap="magma", origin="lower")
    for ax, title in zip(axes, ["input", "sigma_r overlay", "CGM probability", "sigma_s"]):
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return _png(figure)


def strip_plot(scans: list[ScoredScan], cutoffs: Cutoffs) -> str:
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, field, cut, label in ((axes[0], "sigma_r", cutoffs.sigma_r, "visual: sigma_r"),
                                  (axes[1], "sigma_s", cutoffs.sigma_s, "algorithmic: sigma_s"),
                                  (axes[2], "blur", cutoffs.blur, "blur (motion)")):
        values = [getattr(s.scores, field) for s in scans]
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(values))
        ax.scatter(jitter, values, c=[COLOURS[s.verdict] for s in scans], s=25)
        ax.axhline(cut, color="k", ls="--", lw=1, label="cut-off")
        ax.set(xticks=[], title=label, xlim=(-0.5, 0.5))
        ax.legend(fontsize=8)
    return _png(figure)


def render(scans: list[ScoredScan], failures: list[str], cutoffs: Cutoffs, model: str) -> str:
    """The whole report as one HTML string (images inlined)."""
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td style='color:{COLOURS[s.verdict]}'><b>{html.escape(s.verdict)}</b></td>"
        f"<td>{s.scores.sigma_r:.4f}</td><td>{s.scores.sigma_s:.4f}</td><td>{s.scores.blur:.3f}</td>"
        f"<td>{'yes' if s.skull_stripped else ''}</td><td>{s.slice_mm:g}</td><td>{html.escape(s.note)}</td></tr>"
        for s in scans)
    stripped = cutoffs.skull_stripped
    stripped_note = "" if stripped is None else (
        f"<p>A scan that arrives skull-stripped (its head no bigger than a brain, in a zero background; "
        f"<i>skull-stripped</i> in the table) is judged with the cut-offs moved to skull-stripped scans: "
        f"sigma_r &le; {stripped.sigma_r:.4f}, sigma_s &le; {stripped.sigma_s:.4f} and blur &le; {stripped.blur:.3f} "
        f"against their sharpness {', '.join(f'{v:.3f}' for v in stripped.sharpness)} "
        f"({html.escape(stripped.method.rsplit('; ', 1)[-1])}): sigma_r covers the brain only there, and "
        "sigma_s reads cortex against a zero background.</p>")
    failed = "".join(f"<li>{html.escape(f)}</li>" for f in failures)
    cards = "".join(f"<h3>{html.escape(s.name)} — <span style='color:{COLOURS[s.verdict]}'>{html.escape(s.verdict)}"
                    f"</span></h3>" + (f"<img src='{mosaic(s)}'>" if s.slices is not None else
                                       f"<a href='{html.escape(str(s.files['report']))}'>its report</a>")
                    for s in scans)
    strip = f"<img src='{strip_plot(scans, cutoffs)}'>" if scans else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>hetero_qc report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head><body>
<h1>hetero_qc report</h1>
<p>{len(scans)} scan(s) scored, {len(failures)} failed. Model: <code>{html.escape(model)}</code>.</p>
<h2>What the verdicts mean</h2>
<ul><li><b style='color:{COLOURS[OK]}'>{OK}</b>: sigma_r &le; {cutoffs.sigma_r:.4f}, sigma_s &le; {cutoffs.sigma_s:.4f}
and blur &le; {cutoffs.blur:.3f}.</li>
<li><b style='color:{COLOURS[DEGRADED]}'>{DEGRADED}</b>: the image carries corruption the network cannot undo
(sigma_r &gt; {cutoffs.sigma_r:.4f}), but the cortical segmentation is as certain as on clean scans.</li>
<li><b style='color:{COLOURS[BLURRED]}'>{BLURRED}</b>: the scan is much blurrier along one axis than the clean
scans the cut-offs were calibrated on (blur &gt; {cutoffs.blur:.3f}),
as rigid motion blurs the phase-encode axis, and simulated motion lowers the CGM Dice: check these scans before use.
Slices thicker than the model's grid by more than a quarter (from the scan's header) blur it too, and the note
says so: that blur is the acquisition's, not necessarily motion, and the cortex along those slices is partial-volumed.</li>
<li><b style='color:{COLOURS[EXCLUDE]}'>{EXCLUDE}</b>: the cortical segmentation itself is uncertain
(sigma_s &gt; {cutoffs.sigma_s:.4f}).</li></ul>
<p>sigma_r: the reconstruction error the network predicts, its standard deviation as a root mean square
over the head (in the model's preprocessed intensity scale); sigma_s:
mean segmentation standard deviation over the head, each voxel weighted by its predicted cortex
probability (cortex the network half gave up still counts; background it is sure of, skull, neck or
field of view, does not); blur: how far the sharpness of the
blurriest axis (log mean squared difference of neighbouring head voxels, less its mean over the three
axes) falls below that of the clean calibration scans, {", ".join(f"{v:.3f}" for v in cutoffs.sharpness)}.
Cut-offs: {html.escape(cutoffs.method)}.</p>{stripped_note}
<h2>Scans</h2><table>
<tr><th>scan</th><th>verdict</th><th>sigma_r</th><th>sigma_s</th><th>blur</th><th>skull-stripped</th><th>slices (mm)</th><th>note</th></tr>
{rows}</table>{f"<h2>Failed</h2><ul>{failed}</ul>" if failures else ""}
<h2>Group</h2>{strip}<h2>Per scan</h2>{cards}</body></html>"""
