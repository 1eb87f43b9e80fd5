from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Credits ledger"

    def ready(self) -> None:
        from ledger.console_groups import on_post_migrate

        # The webhook console pages register themselves on import (`ledger.admin` covers the
        # ledger's own models).
        from ledger.webhooks import admin  # noqa: F401

        # After the permissions of this app exist (auth's receiver was connected earlier).
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="ledger_console_groups")
