"""The pieces of ``report.html``: one self-contained page (inline CSS and JS, images as
data URIs), so it can be mailed, archived or opened offline and shows the same.

Nothing here reaches the network: no external stylesheet, script, font or image,
and no ``http(s)://`` address is written (tests/test_report.py checks). The only
script makes the tables with class ``sortable`` sortable by a click on a header.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: Images embedded and their MIME types (an animation larger than the bound is linked
#: by file name instead, so the page stays small enough to open anywhere).
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MAX_EMBED_BYTES = 8_000_000

CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;
color:#1d2430;background:#f6f7f9}
main{max-width:1150px;margin:0 auto;padding:18px 26px 60px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:8px 0 2px}h2{font-size:20px;margin:30px 0 8px;border-bottom:2px solid
#dde3ea;padding-bottom:3px}h3{font-size:16px;margin:18px 0 6px}
.sub{color:#566070;margin:0 0 10px}
nav a{margin-right:14px;color:#1f5fa8;text-decoration:none;font-size:14px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13.5px}
th,td{border:1px solid #d5dbe3;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:' \\2195';
color:#99a3ae}table.sortable th.asc:after{content:' \\2191'}table.sortable th.desc:after{
content:' \\2193'}
.wide{overflow-x:auto;max-width:100%}
.warn{background:#fff4e0;border-left:4px solid #e8a33d;padding:6px 10px;margin:5px 0}
.ok{background:#eaf6ec;border-left:4px solid #4caf50;padding:6px 10px;margin:5px 0}
.bad{background:#fdecec;border-left:4px solid #d9534f;padding:6px 10px;margin:5px 0}
figure{margin:10px 0 18px}figure img{max-width:100%;border:1px solid #e1e5ea}
figcaption{color:#566070;font-size:13px}
details{margin:6px 0}summary{cursor:pointer;color:#1f5fa8}
code{background:#f0f2f5;padding:0 3px;border-radius:3px}
.big{font-size:22px;font-weight:600}
"""

#: Sorts a table with class ``sortable`` on a click of a header: numbers by the
#: cell's ``data-v`` (else its text read as a number), text otherwise; blank last.
#: ``report.html#sort=3`` (``#sort=3-``: descending) opens with the first such table
#: sorted by its 4th column. Marks ``<body data-report-js="ready">`` so a browser
#: test can see it ran.
JS = r"""
(function(){
function key(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent.trim();
var x=parseFloat(v);return {n:isNaN(x)?null:x,s:td.textContent.trim().toLowerCase()};}
function sortBy(table,col,th){var body=table.tBodies[0];if(!body)return;
var asc=!th.classList.contains('asc');
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.classList.remove('asc','desc');});
th.classList.add(asc?'asc':'desc');
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var p=key(a.cells[col]),q=key(b.cells[col]);
if(p.n===null&&q.n===null)return asc?p.s.localeCompare(q.s):q.s.localeCompare(p.s);
if(p.n===null)return 1;if(q.n===null)return -1;return asc?p.n-q.n:q.n-p.n;});
rows.forEach(function(r){body.appendChild(r);});}
Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){
if(!t.tHead)return;Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
th.addEventListener('click',function(){sortBy(t,i,th);});});});
var m=/^#sort=(\d+)(-?)$/.exec(location.hash),first=document.querySelector('table.sortable');
if(m&&first&&first.tHead){var th=first.tHead.rows[0].cells[+m[1]];
if(th){sortBy(first,+m[1],th);if(m[2])sortBy(first,+m[1],th);}}
document.body.setAttribute('data-report-js','ready');
})();
"""


def esc(text: Any) -> str:
    """HTML-escaped text of ``text``."""
    return html.escape(str(text), quote=True)


def is_number(v: Any) -> bool:
    """A real number (not a bool, not None)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def num(v: Any, digits: int = 4) -> str:
    """A value for a table cell: numbers to ``digits`` significant digits, None as
    an en dash, lists inline."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if is_number(v):
        x = float(v)
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x == int(x) and abs(x) < 1e9 and isinstance(v, int):
            return f"{int(x):d}"
        return f"{x:.{digits}g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(num(x, digits) for x in v) + "]"
    return str(v)


_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s+(\S.*)$")


def quantity(v: Any, digits: int = 4) -> Any:
    """A study value as written (``"0.16666666666666666 day"``) to ``digits``
    significant digits (``"0.1667 day"``); anything else unchanged."""
    m = _QUANTITY.match(v) if isinstance(v, str) else None
    return f"{float(m.group(1)):.{digits}g} {m.group(2)}" if m else v


def pct(v: Any, digits: int = 1) -> str:
    """A fraction as a percentage (``0.676`` → ``67.6 %``)."""
    return "–" if not is_number(v) or math.isnan(float(v)) else f"{100 * float(v):.{digits}f} %"


def pct_ci(p: Any, ci: Sequence[Any] | None) -> str:
    """``67.6 % (95 % CI 64.6–70.4 %)``; the interval is left out when unknown."""
    if ci is None or len(ci) != 2 or not all(is_number(c) for c in ci):
        return pct(p)
    return f"{pct(p)} (95 % CI {100 * ci[0]:.1f}–{100 * ci[1]:.1f} %)"


def cell(v: Any, raw: str | None = None) -> str:
    """A ``<td>``: numbers right-aligned with their exact value for sorting."""
    if is_number(v) and not math.isnan(float(v)):
        return f'<td class="num" data-v="{float(v)!r}">{esc(num(v) if raw is None else raw)}</td>'
    return f"<td>{esc(num(v) if raw is None else raw)}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, sortable: bool = False,
          html_cells: bool = False) -> str:
    """A table; rows of values (formatted by :func:`cell`) or, with ``html_cells``, of
    ready ``<td>`` strings."""
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(r if html_cells else (cell(v) for v in r)) + "</tr>"
                   for r in rows)
    return f'<div class="wide"><table{cls}><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></div>"


def section(sid: str, title: str, body: str) -> str:
    """A titled section with an anchor for the navigation bar."""
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{body}</section>'


def details(summary: str, body: str) -> str:
    """A collapsed block."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def notes(lines: Iterable[str], kind: str = "warn") -> str:
    """One box per line (``warn``, ``ok`` or ``bad``)."""
    return "".join(f'<div class="{kind}">{esc(line)}</div>' for line in lines)


def data_uri(data: bytes, mime: str) -> str:
    """``data:`` URI of ``data``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure(path: Path, caption: str) -> str:
    """An image file embedded as a data URI, with its caption; a missing file or an
    animation over :data:`MAX_EMBED_BYTES` is named instead."""
    mime = MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return f"<p>{esc(path.name)}: not available.</p>"
    if path.stat().st_size > MAX_EMBED_BYTES:
        return (f"<p>{esc(caption)}: <code>{esc(path.name)}</code> "
                f"({path.stat().st_size / 1e6:.0f} MB, not embedded).</p>")
    return figure_bytes(path.read_bytes(), mime, caption, path.name)


def figure_bytes(data: bytes, mime: str, caption: str, name: str = "") -> str:
    """Image bytes embedded as a data URI, with a caption."""
    src = data_uri(data, mime)
    label = f" <code>{esc(name)}</code>" if name else ""
    return (f'<figure><img src="{src}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}{label}</figcaption></figure>")


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The whole document."""
    links = "".join(f'<a href="#{esc(sid)}">{esc(label)}</a>' for sid, label in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
            f'<h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p><nav>{links}</nav>'
            f"{body}</main><script>{JS}</script></body></html>\n")
