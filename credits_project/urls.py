from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from credits_project.api.errors import error_response
from credits_project.errors import NotFound
from ledger.admin.bulk_grants import bulk_grant_urls
from ledger.admin.overview import overview_urls


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers: 200 while the database answers, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@csrf_exempt  # API clients send no CSRF token: a POST here must get 404, not a CSRF 403
def unknown_api_route(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(NotFound({"path": request.path}), request)


urlpatterns = [
    path("v1/", include("ledger.api.routes")),
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    re_path(r"^v1/(?P<rest>.*)$", unknown_api_route),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    # A person who opens the service's address, or types the docs' address with a slash, gets
    # the API's documentation rather than a 404.
    path("", RedirectView.as_view(pattern_name="docs")),
    path("docs/", RedirectView.as_view(pattern_name="docs")),
    path("healthz", healthz),
    path("admin/", include(overview_urls() + bulk_grant_urls())),
    path("admin/", admin.site.urls),
]
