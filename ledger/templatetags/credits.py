"""Template filters of the console: amounts in plain decimals, instants in UTC, customer ids
with their invisible characters made visible."""

import datetime as dt
import unicodedata
from decimal import Decimal

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from credits_project.json import format_decimal
from customers.models import Project

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


def hidden_characters(text: str) -> list[tuple[str, bool]]:
    """`text` in runs, each with whether it is one character that does not show as itself:
    format and bidi controls (zero-width space, right-to-left override), other controls,
    spaces at either end or other than the plain space, and combining marks of an id that is
    not in NFC (`e` + U+0301, which looks like `é`). Ids are the client's, so two customers may
    differ only by these; the console must show which is which."""
    decomposed = not unicodedata.is_normalized("NFC", text)
    runs: list[tuple[str, bool]] = []
    last = len(text) - 1
    for index, character in enumerate(text):
        category = unicodedata.category(character)
        hidden = (
            category[0] == "C"
            or (category[0] == "Z" and (character != " " or index in (0, last)))
            or (category[0] == "M" and decomposed)
        )
        if hidden or not runs or runs[-1][1]:
            runs.append((character, hidden))
        else:
            runs[-1] = (runs[-1][0] + character, False)
    return runs


def code_point(character: str) -> str:
    return f"⟨U+{ord(character):04X}⟩"


def visible_text(text: str) -> str:
    """The id as plain text, each hidden character written as `⟨U+200B⟩` (for titles)."""
    return "".join(code_point(run) if hidden else run for run, hidden in hidden_characters(text))


@register.filter
def visible_id(text: str) -> SafeString:
    """The id as HTML, isolated from the page's text direction, each hidden character shown as
    its code point in a marked span named after the character."""
    parts = format_html_join(
        "",
        "{}",
        (
            (
                format_html(
                    '<span class="credits-hidden-char" title="{}">{}</span>',
                    unicodedata.name(run, "unnamed character"),
                    code_point(run),
                )
                if hidden
                else run,
            )
            for run, hidden in hidden_characters(text)
        ),
    )
    return format_html('<bdi class="credits-id">{}</bdi>', parts)


@register.simple_tag(takes_context=True)
def page_project(context) -> Project | None:
    """The project a console page is about: its object's (a customer, a key, an endpoint), or
    the one an overview shows; None on pages that span projects."""
    project = getattr(context.get("original"), "project", None)
    return project if isinstance(project, Project) else context.get("console_project")
