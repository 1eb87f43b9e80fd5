"""Charts drawn on the server as inline SVG: no script, no library, no network, so the console
works offline and prints as it looks.

Amounts become floats here only to place points on the picture; the labels print the exact
`Decimal`s.
"""

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from credits_project.json import format_decimal

Series = Sequence[tuple[dt.date, Decimal]]

COLOURS = ["#417690", "#e07b39", "#5b9e4d", "#a05195", "#d45087", "#2f4b7c", "#b8a200"]
WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 12, 28


def line_chart(
    series: dict[str, Series], *, title: str, legend: str = "{name}: {value}"
) -> SafeString:
    """One line per named series over the same days, with a legend and the last value of each
    (`legend` formats it).

    Every series must cover the same days in order.
    """
    names = list(series)
    if not names or not series[names[0]]:
        return format_html('<p class="chart-empty">{}: nothing to draw yet.</p>', title)
    days = [day for day, _ in series[names[0]]]
    values = [value for points in series.values() for _, value in points]
    low, high = min(min(values), Decimal(0)), max(max(values), Decimal(0))
    if high == low:
        high = low + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    labels = [legend.format(name=name, value=format_decimal(series[name][-1][1])) for name in names]
    # The legend as wide as its longest label (the picture widens rather than cut a wallet's
    # name): about 6.5 px a character at 11 px, and the swatch before it.
    width = WIDTH - RIGHT + max(RIGHT, 34 + round(6.5 * max(map(len, labels))))

    def x(index: int) -> float:
        return LEFT + plot_w * index / max(len(days) - 1, 1)

    def y(value: Decimal) -> float:
        return TOP + plot_h * float((high - value) / (high - low))

    parts = [
        f'<svg class="credits-chart" viewBox="0 0 {width} {HEIGHT}" width="100%" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        # Exact, as every label: the middle of 0 and 1875 is 937.5, not 938.
        value = low + (high - low) * Decimal(str(fraction))
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#666">{escape(format_decimal(value))}</text>'
        )
    for index in sorted({0, len(days) // 2, len(days) - 1}):
        parts.append(
            f'<text x="{x(index):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
            f'fill="#666">{days[index].isoformat()}</text>'
        )
    for number, (name, label) in enumerate(zip(names, labels, strict=True)):
        colour = COLOURS[number % len(COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(series[name]))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            f'<rect x="{WIDTH - RIGHT + 10}" y="{TOP + 16 * number}" width="10" height="10" '
            f'fill="{colour}"/>'
            f'<text x="{WIDTH - RIGHT + 24}" y="{TOP + 9 + 16 * number}" font-size="11">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def bar_chart(points: Series, *, title: str, label_format: str = "%Y-%m") -> SafeString:
    """One bar per point, labelled with its exact value."""
    if not points:
        return format_html('<p class="chart-empty">{}: nothing to draw yet.</p>', title)
    high = max(max(value for _, value in points), Decimal(1))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM - 14
    slot = plot_w / len(points)
    parts = [
        f'<svg class="credits-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (day, value) in enumerate(points):
        bar_h = plot_h * float(value / high)
        left = LEFT + slot * index + slot * 0.15
        top = TOP + 14 + plot_h - bar_h
        parts.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" '
            f'fill="{COLOURS[0]}"/>'
            f'<text x="{left + slot * 0.35:.1f}" y="{top - 3:.1f}" text-anchor="middle" '
            f'font-size="11">{escape(format_decimal(value))}</text>'
            f'<text x="{left + slot * 0.35:.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
            f'font-size="11" fill="#666">{escape(day.strftime(label_format))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
