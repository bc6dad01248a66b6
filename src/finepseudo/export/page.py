"""The page of a prediction run: one self-contained HTML file with, per video, a strip of the frames the model
saw and its top-3 classes (and p_A's class when phi_A is exported). Written row by row as predictions come, so
its writer holds one video's strip at a time."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

__all__ = ["PageWriter", "frame_strip"]

STRIP_FRAMES = 8

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:middle}th{background:#f3f3f3}img{height:56px;image-rendering:pixelated}
.failed{color:#c62828}.padded{color:#a15c00}.note{color:#555;font-size:.9em}"""


def frame_strip(frames: np.ndarray, n: int = STRIP_FRAMES) -> str:
    """``n`` frames evenly spread over uint8 (T, H, W, 3) side by side, as a base64 PNG ``<img>`` tag."""
    from matplotlib.image import imsave

    idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    strip = np.concatenate(list(frames[idx]), axis=1)
    buf = io.BytesIO()
    imsave(buf, strip, format="png")
    return f'<img alt="frames" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


class PageWriter:
    """Writes the page of a prediction run to ``path`` as rows arrive; :meth:`close` adds the summary."""

    def __init__(self, path: str | Path, model, title: str = ""):
        card = model.card
        self._f = open(path, "w")  # noqa: SIM115 - closed by close()
        self._al = model.has_alignability
        ev, sp = card["evaluation"], card["split"]
        score = (f"test top-1 {ev['top1']:.1f} % (95 % interval {ev['top1_ci95'][0]:.1f}-{ev['top1_ci95'][1]:.1f})"
                 if ev["top1"] is not None and ev["top1_ci95"] else "not evaluated on a test split")
        head = (f"<!doctype html><html><head><meta charset='utf-8'><title>Predictions {html.escape(title)}</title>"
                f"<style>{_CSS}</style></head><body><h1>Predictions: {html.escape(title or str(path))}</h1>"
                f"<p>Model: <b>{html.escape(card['method'])}</b> on {html.escape(card['dataset'])}, "
                f"{sp['label_percent']:g} % labels, split seed {sp['seed']} (<code>{html.escape(str(model.folder))}"
                f"</code>); {score}. Probabilities are p_E "
                f"calibrated with T_E = {card['calibration']['temperature']}.</p>"
                "<p class='note'>Each strip shows frames the model saw, evenly spread over the video (or its frame "
                "range).</p><table><tr><th>video</th><th>status</th><th>frames</th><th>top-3 (p_E calibrated)</th>"
                + ("<th>p_A</th>" if self._al else "") + "</tr>")
        self._f.write(head)

    def write(self, row: dict, frames: np.ndarray | None) -> None:
        status = row["status"]
        cells = [f"<td>{html.escape(str(row['video']))}</td>",
                 f"<td class='{status}'>{status}" + (f"<br><span class='note'>{html.escape(row['reason'])}</span>"
                                                     if row.get("reason") else "") + "</td>"]
        if frames is None:
            cells.append("<td></td><td></td>" + ("<td></td>" if self._al else ""))
        else:
            top = "<br>".join(f"{html.escape(row[f'top{k}_name'])} {row[f'top{k}_prob']:.2f}"
                              for k in (1, 2, 3) if f"top{k}_name" in row)
            cells.append(f"<td>{frame_strip(frames)}</td><td>{top}</td>")
            if self._al:
                cells.append(f"<td>{html.escape(row['pA_name'])} {row['pA_prob']:.2f}</td>")
        self._f.write("<tr>" + "".join(cells) + "</tr>\n")

    def close(self, counts: dict[str, int], seconds: float) -> None:
        total = sum(counts.values())
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        self._f.write(f"</table><p>{total} videos ({summary or 'none'}) in {seconds:.1f} s.</p></body></html>\n")
        self._f.close()
