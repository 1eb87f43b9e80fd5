"""The request contract: the fields of every request and how each is validated, with the
contract's error codes, shared by the API, the console's forms and grant files. Knows nothing
of HTTP: callers hand it the parsed body (or row, or form data)."""
