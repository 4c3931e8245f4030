"""The pipeline DAG as an SVG picture, drawn by mlc itself (no Graphviz): `mlc graph --format
svg`.

The picture is `mlc.ir.render_graph.picture`'s, laid out in columns from left to right: a
node's column is one past the furthest of the nodes it needs (so every edge points right),
and a column lists its nodes in declaration order. An edge to the next column is a straight line
from the right of one box to the left of the other; one that skips columns arcs over the boxes
between, higher the more it skips. Labels (like the DOT and Mermaid ones) sit at the middle of
their edge, on top of everything, and edges are styled the same way (dashed for `after` and
gates, dotted for `finally`). Text is measured by
character count, which is close enough for the sans-serif fonts SVG viewers use.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from mlc.ir.model import IRDocument
from mlc.ir.render_graph import picture

CHAR_WIDTH = 7.0
LINE_HEIGHT = 16.0
PAD_X = 12.0
PAD_Y = 8.0
GAP_X = 120.0
GAP_Y = 28.0
MARGIN = 20.0
ARC = 34.0
"""How much higher an edge arcs for each column it skips."""

_FILL = {"dataset": "#e8f0fe", "step": "#ffffff", "finally": "#e0e0e0"}
_STROKE = {"dataset": "#3c6db5", "step": "#333333", "finally": "#757575"}
_DASH = {"data": "", "order": ' stroke-dasharray="6,4"', "gate": ' stroke-dasharray="6,4"'}
_DASH["finally"] = ' stroke-dasharray="2,3"'


def to_svg(document: IRDocument) -> str:
    """The pipeline DAG as a standalone SVG document."""
    nodes, edges = picture(document)
    needs: dict[str, list[str]] = {node.id: [] for node in nodes}
    for edge in edges:
        needs[edge.target].append(edge.source)
    column: dict[str, int] = {}

    def column_of(node_id: str) -> int:
        if node_id not in column:
            column[node_id] = 1 + max((column_of(n) for n in needs[node_id]), default=-1)
        return column[node_id]

    columns: dict[int, list[str]] = {}
    for node in nodes:
        columns.setdefault(column_of(node.id), []).append(node.id)
    by_id = {node.id: node for node in nodes}
    width = max((len(line) for node in nodes for line in node.lines), default=4)
    box_w = width * CHAR_WIDTH + 2 * PAD_X
    heights = {n.id: len(n.lines) * LINE_HEIGHT + 2 * PAD_Y for n in nodes}
    spans = [column[e.target] - column[e.source] for e in edges]
    lift = ARC * max((span - 1 for span in spans), default=0)
    place: dict[str, tuple[float, float]] = {}
    tallest = 0.0
    for index, members in sorted(columns.items()):
        y = MARGIN + lift
        for node_id in members:
            place[node_id] = (MARGIN + index * (box_w + GAP_X), y)
            y += heights[node_id] + GAP_Y
        tallest = max(tallest, y - GAP_Y + MARGIN)
    total_w = MARGIN * 2 + len(columns) * box_w + max(0, len(columns) - 1) * GAP_X
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:g}" height="{tallest:g}" '
        f'viewBox="0 0 {total_w:g} {tallest:g}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="12">',
        f"<title>{escape(document.pipeline.name)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#555555"/></marker></defs>',
    ]
    labels: list[str] = []
    for edge, span in zip(edges, spans, strict=True):
        sx, sy = place[edge.source]
        tx, ty = place[edge.target]
        x1, y1 = sx + box_w, sy + heights[edge.source] / 2
        x2, y2 = tx, ty + heights[edge.target] / 2
        style = f'fill="none" stroke="#555555"{_DASH[edge.kind]} marker-end="url(#arrow)"'
        if span <= 1:
            parts.append(f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" {style}/>')
            middle = ((x1 + x2) / 2, (y1 + y2) / 2 - 4)
        else:
            top = min(sy, ty) - ARC * (span - 1) * 4 / 3
            parts.append(
                f'<path d="M {x1:g} {y1:g} C {x1 + GAP_X / 2:g} {top:g}, '
                f'{x2 - GAP_X / 2:g} {top:g}, {x2:g} {y2:g}" {style}/>'
            )
            middle = ((x1 + x2) / 2, (y1 + y2 + 6 * top) / 8 - 4)
        if edge.label:
            # A white halo under the text keeps it readable over lines; drawn as a copy of its
            # own rather than with `paint-order`, which SVG 1.1 renderers ignore (they would
            # paint the halo over the text).
            at = f'x="{middle[0]:g}" y="{middle[1]:g}" text-anchor="middle" font-size="10"'
            text = escape(edge.label)
            labels.append(
                f'<text {at} fill="#ffffff" stroke="#ffffff" stroke-width="3">{text}</text>'
            )
            labels.append(f'<text {at} fill="#333333">{text}</text>')
    for node_id, (x, y) in place.items():
        node = by_id[node_id]
        radius = 14 if node.kind == "dataset" else 6
        parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{box_w:g}" height="{heights[node_id]:g}" '
            f'rx="{radius}" fill="{_FILL[node.kind]}" stroke="{_STROKE[node.kind]}"/>'
        )
        for number, line in enumerate(node.lines):
            baseline = y + PAD_Y + (number + 1) * LINE_HEIGHT - 4
            parts.append(
                f'<text x="{x + box_w / 2:g}" y="{baseline:g}" text-anchor="middle">'
                f"{escape(line)}</text>"
            )
    parts += labels
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
