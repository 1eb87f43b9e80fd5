"""The console's two groups: `support` reads everything and acts on nothing; `operator` reads
everything and may act on credits (`act_on_credits`). Superusers need neither.

Made by a data migration, and again after every `migrate` or `flush` (a `post_migrate`
receiver), so they exist whenever the database does.
"""

READ = [
    ("customers", "project"),
    ("customers", "customer"),
    ("customers", "apikey"),
    ("ledger", "creditaccount"),
    ("ledger", "transaction"),
    ("ledger", "ledgerentry"),
    ("ledger", "operatoraction"),
    ("ledger", "slotevent"),
    ("ledger", "entitlementevent"),
    ("ledger", "webhookendpoint"),  # without its secret (`WebhookEndpointAdmin`)
    ("ledger", "webhookdelivery"),
]
ACT = ("ledger", "act_on_credits")


def ensure_console_groups(group_model, permission_model) -> None:
    """Create the groups, or give them back their permissions; takes the models (historical
    ones in a migration)."""
    view = list(
        permission_model.objects.filter(
            content_type__app_label__in={app for app, _ in READ},
            codename__in=[f"view_{model}" for _, model in READ],
        )
    )
    act = list(permission_model.objects.filter(content_type__app_label=ACT[0], codename=ACT[1]))
    support, _ = group_model.objects.get_or_create(name="support")
    support.permissions.add(*view)
    operator, _ = group_model.objects.get_or_create(name="operator")
    operator.permissions.add(*view, *act)


def on_post_migrate(sender, apps=None, **kwargs) -> None:
    if apps is None:  # `flush` sends none: the current models
        from django.apps import apps
    ensure_console_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
