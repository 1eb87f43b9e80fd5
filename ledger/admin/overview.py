"""The credits overview: one project's credits at a glance, linked from the admin index."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from credits_project.replicas import reads_from_standby
from customers.models import Project
from ledger.admin.charts import bar_chart, line_chart
from ledger.selectors.console import project_overview
from ledger.selectors.schedules import scheduled_by_wallet


@reads_from_standby()
def overview_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("ledger.view_ledgerentry"):
        raise PermissionDenied
    projects = list(Project.objects.order_by("name"))
    chosen = request.GET.get("project")
    project = next((p for p in projects if str(p.pk) == chosen), projects[0] if projects else None)
    context = {
        **admin.site.each_context(request),
        "title": "Credits overview",
        "projects": projects,
        "project": project,
        "console_project": project,  # named in the header
    }
    if project is not None:
        overview = project_overview(project)
        context.update(
            overview=overview,
            scheduled=scheduled_by_wallet(project, at=overview.at),
            daily_chart=line_chart(
                {"granted": overview.granted, "consumed": overview.consumed},
                title="Credits granted and consumed per day, last 90 days (UTC)",
                legend="{name} today: {value}",
            ),
            breakage_chart=bar_chart(
                overview.breakage, title="Credits expired unused per month (UTC)"
            ),
        )
    return TemplateResponse(request, "admin/ledger/overview.html", context)


def overview_urls() -> list:
    """Mounted before the admin's own URLs (under `admin/`), behind its login."""
    return [
        path("credits-overview/", admin.site.admin_view(overview_view), name="credits_overview")
    ]
