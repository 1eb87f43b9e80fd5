"""The operator console: the Django admin, made to answer questions about credits.

Each module registers one part: `accounts` (accounts and transactions, read-only), `entries`
(the ledger list, its filters and CSV export), `audit` (operator actions), `customers` (the
customer page with its credits and the operator's actions), `overview` (a project at a glance).
Nothing here moves credits: the actions call `ledger.services`, as the API does.
"""

from ledger.admin import accounts, audit, customers, entries, overview  # noqa: F401
