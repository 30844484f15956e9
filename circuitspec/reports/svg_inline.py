"""matplotlib figures as inline ``<svg>`` for the HTML reports: crisp at any zoom, small, deterministic.

``svg.fonttype: none`` keeps text as ``<text>`` (no glyph outlines: a tenth of the size), a fixed
``svg.hashsalt`` and no ``Date`` make the bytes repeatable, and the markup is made safe to place
many times in one page: ids (and ``url(#…)`` / ``href`` references) get a per-figure prefix, the
metadata, DOCTYPE and fixed height go (the width fills the container or stays as drawn; never
wider than drawn, the viewBox keeps the aspect). Groups drawn with a ``gid`` get a ``<title>``
child, which browsers show on hover with no script (the matplotlib gallery's "SVG tooltip").
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

__all__ = ["figure_svg", "svg_style"]

_SVG = "http://www.w3.org/2000/svg"
_XLINK = "{http://www.w3.org/1999/xlink}href"
_URL = re.compile(r"url\(#([^)]+)\)")
_REFERENCE = re.compile(r"(?:url\(|^)#([^)\s]+)")
_DECIMALS = re.compile(r"(-?\d+)(\.\d{0,2})\d*")


@contextmanager
def svg_style() -> Iterator[None]:
    """matplotlib settings for report figures: text stays text, repeatable ids, and no ``$…$``
    mathtext in user text (token strings, claim ids). Build and save figures inside it."""
    with rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "circuitspec",
            "text.parse_math": False,
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans"],  # the font matplotlib measures text with; one name, not ten
            "axes.titley": 1.0,  # a fixed title height: the automatic one measures every tick label again
        }
    ):
        yield


ET.register_namespace("", _SVG)  # serialise as the default namespace: <svg xmlns="...">


def _prefix_ids(root: ET.Element, prefix: str) -> None:
    """Prefix every id and every reference to one, so figures never clash inside one page."""
    ids = {str(el.get("id")) for el in root.iter() if el.get("id")}

    def prefixed(m: re.Match[str]) -> str:
        return f"url(#{prefix}{m[1]})" if m[1] in ids else m[0]

    for el in root.iter():
        if el.get("id"):
            el.set("id", prefix + str(el.get("id")))
        href = el.attrib.pop(_XLINK, None) or el.get("href")
        if href is not None:
            el.set("href", "#" + prefix + href[1:] if href.startswith("#") and href[1:] in ids else href)
        for key, value in el.attrib.items():
            if "url(#" in value:
                el.set(key, _URL.sub(prefixed, value))


def _title(element: ET.Element, text: str) -> None:
    title = ET.Element(f"{{{_SVG}}}title")
    title.text = text
    element.insert(0, title)


def _compact(root: ET.Element) -> None:
    """Drop what only bloats an inline figure (a third to half of its bytes): ids nothing refers to,
    indentation, 'rotate(-0 …)' and coordinates past 0.01 pt."""
    used = {m[1] for el in root.iter() for v in el.attrib.values() for m in _REFERENCE.finditer(v)}
    for el in root.iter():
        if el.get("id") and el.get("id") not in used:
            del el.attrib["id"]
        if el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
        if el.get("transform", "").startswith("rotate(-0 "):
            del el.attrib["transform"]
        for key in ("d", "x", "y", "points"):
            if key in el.attrib:
                el.set(key, _DECIMALS.sub(lambda m: m[1] + m[2].rstrip("0").rstrip("."), el.attrib[key]))


def figure_svg(
    figure: Figure,
    prefix: str,
    label: str,
    titles: Mapping[str, str | list[str]] | None = None,
    *,
    fill: bool = True,
) -> str:
    """``figure`` as one inline ``<svg>`` element (``role="img"``, ``aria-label=label``).

    ``prefix``: unique per figure in a page (ids); ``titles``: hover text by the ``gid`` of a drawn
    artist, or a list of them for a collection (a mesh's cells, in drawing order); ``fill``: width
    100% of the container up to the drawn width, else the drawn width (shrunk to fit). Build the
    figure inside :func:`svg_style` (its text settings apply when text is made).
    """
    buffer = io.BytesIO()
    with svg_style():
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Creator": None})
    root = ET.fromstring(buffer.getvalue())
    for meta in root.findall(f"{{{_SVG}}}metadata"):
        root.remove(meta)
    for group in root.iter(f"{{{_SVG}}}g"):
        text = (titles or {}).get(group.get("id", ""))
        if isinstance(text, str):
            _title(group, text)
        elif text is not None:  # one per drawn item of a collection, in drawing order
            drawn = list(group)
            if len(drawn) != len(text):
                raise ValueError(f"{len(text)} titles for {len(drawn)} items of '{group.get('id')}'")
            for item, item_text in zip(drawn, text, strict=True):
                _title(item, item_text)
    _compact(root)
    _prefix_ids(root, prefix)
    width = root.attrib.pop("width", "")
    for key in ("height", "version"):  # the viewBox keeps the aspect
        root.attrib.pop(key, None)
    if fill:  # as wide as the container, never wider than drawn
        root.set("width", "100%")
        root.set("style", f"max-width:{width or '100%'};height:auto")
    else:  # as drawn, shrunk to fit a narrower container (a plot beside others in a flex row)
        root.set("width", width or "100%")
        root.set("style", "max-width:100%;height:auto")
    root.set("role", "img")
    root.set("aria-label", label)
    return ET.tostring(root, encoding="unicode")
