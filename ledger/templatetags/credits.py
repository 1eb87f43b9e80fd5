"""Template filters of the console: amounts in plain decimals, instants in UTC."""

import datetime as dt
from decimal import Decimal

from django import template

from credits_project.json import format_decimal

register = template.Library()


@register.filter
def credits(value: Decimal | None) -> str:
    """`120`, never `1.2E+2`; an empty cell for no amount."""
    return "" if value is None else format_decimal(value)


@register.filter
def utc(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def duration(value: dt.timedelta) -> str:
    """A rough age: `3d 4h`, `5h 12m`, `42s`."""
    seconds = max(int(value.total_seconds()), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
