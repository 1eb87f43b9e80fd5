import io
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "credits_project.settings")

django_application = get_wsgi_application()


def application(environ, start_response):
    """Django reads a request body only up to `CONTENT_LENGTH`, so a chunked body (no length;
    gunicorn decodes the chunks and ends the input, `wsgi.input_terminated`) would reach the API
    as an empty one. Read at most one byte past the API body limit and give the body its
    length, so the limit answers 413 and a small chunked JSON body is parsed like any other."""
    if (
        "CONTENT_LENGTH" not in environ
        and environ.get("wsgi.input_terminated")
        and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        and environ.get("PATH_INFO", "").startswith("/v1/")
    ):
        from django.conf import settings

        body = environ["wsgi.input"].read(settings.API_MAX_BODY_BYTES + 1)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    return django_application(environ, start_response)
