"""gunicorn's access log with credentials taken out of the URLs it records.

A client that puts an API key (or any token) in a query string must not leak it into log files,
which are kept longer and read by more people than the service's database.
"""

import re
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
# A parameter is a credential when any word of its name is one of these, e.g. `api_key`,
# `access_token`, `X-Amz-Signature`, `clientSecret`.
CREDENTIAL_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "bearer",
        "code",
        "credential",
        "credentials",
        "jwt",
        "key",
        "pass",
        "passwd",
        "password",
        "pwd",
        "secret",
        "session",
        "sessionid",
        "sig",
        "signature",
        "token",
    }
)
WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_credential(name: str) -> bool:
    return any(word.lower() in CREDENTIAL_WORDS for word in WORD.findall(unquote_plus(name)))


def redact_query(query: str) -> str:
    """`query` with the value of each credential-like parameter replaced."""
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if equals and is_credential(name) else part)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """A request target, request line or URL with its query string's credentials redacted."""
    head, question, rest = url.partition("?")
    if not question:
        return url
    query, space, tail = rest.partition(" ")  # a request line goes on with the protocol
    fragment_start = query.find("#")
    fragment = ""
    if fragment_start >= 0:
        query, fragment = query[:fragment_start], query[fragment_start:]
    return f"{head}?{redact_query(query)}{fragment}{space}{tail}"


# Request headers that carry credentials whatever their name says.
CREDENTIAL_HEADERS = frozenset({"cookie", "set-cookie", "proxy-authorization"})
URL_ATOMS = ("r", "f", "{referer}i", "{raw_uri}e", "{http_referer}e")
QUERY_ATOMS = ("q", "{query_string}e")


class RedactingLogger(Logger):
    """gunicorn's logger whose access log redacts credentials: in the request line (`%(r)s`),
    the query string (`%(q)s`) and the referrer (`%(f)s`), and in the header and environment
    atoms a custom `access_log_format` may name (`%({authorization}i)s`, ...)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact_url(atoms[name])
        for name in QUERY_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact_query(atoms[name])
        for name in atoms:
            if name.startswith("{") and name[-2:] in ("}i", "}o", "}e"):
                header = name[1:-2].removeprefix("http_").replace("_", "-")
                if header in CREDENTIAL_HEADERS or is_credential(header):
                    atoms[name] = REDACTED
        return atoms
