"""The contract on the console's forms: a form's fields validated by the API's own request
serializer, each error of the contract shown on the form field it names."""

from collections.abc import Mapping
from typing import Any

from django import forms

from credits_project.errors import FieldError, ServiceError
from ledger.contract.requests import RequestSerializer


def add_contract_error(
    form: forms.Form, error: ServiceError, renamed: Mapping[str, str] | None = None
) -> None:
    """Show `error` on the form field it names (`renamed` maps the API's names to the
    form's), or on the whole form when it names none the form has."""
    if not isinstance(error, FieldError):
        form.add_error(None, error.message)
        return
    field = error.details["field"]
    field = (renamed or {}).get(field, field)
    reason = error.details.get("reason")
    message = f"{error.message} ({reason.replace('_', ' ')})" if reason else error.message
    form.add_error(field if field in form.fields else None, message)


def validate_by_contract(
    form: forms.Form, serializer: type[RequestSerializer], data: Mapping[str, Any]
) -> dict[str, Any] | None:
    """`data` as the API validates it, or None after adding the contract's error to `form`."""
    try:
        return serializer.parse(dict(data))
    except ServiceError as error:
        add_contract_error(form, error)
        return None
