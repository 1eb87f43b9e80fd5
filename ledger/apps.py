from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Credits ledger"

    def ready(self):
        # The webhook console pages register themselves on import (`ledger.admin` covers the
        # ledger's own models).
        from ledger.webhooks import admin  # noqa: F401
