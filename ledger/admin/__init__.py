"""The operator console: the Django admin, made to answer questions about credits.

Each module registers one part: `accounts` (accounts and transactions, read-only), `entries`
(the ledger list, its filters and CSV export), `feature_events` (the slot and entitlement
histories), `audit` (operator actions), `customers` (the customer page with its credits, slots,
entitlements, schedules and the operator's actions), `overview` (a project at a glance),
`webhooks` (endpoints and deliveries), `logins` (the login records' clean-up, permission
declared).
Nothing here moves credits: the actions call `ledger.services`, as the API does.
"""

from django.contrib import admin

from ledger.admin import (  # noqa: F401
    accounts,
    audit,
    customers,
    entries,
    feature_events,
    logins,
    overview,
    webhooks,
)

# The ledger's lists are wide; at 1366 px they need the room the navigation sidebar takes
# (every page still has its breadcrumbs and the index).
admin.site.enable_nav_sidebar = False

# The header names the service and the console, not the framework.
admin.site.site_header = "credits · operator console"
admin.site.site_title = "credits console"
