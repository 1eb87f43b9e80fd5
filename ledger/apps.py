from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Credits ledger"

    def ready(self) -> None:
        from ledger.console_groups import on_post_migrate

        # After the permissions of this app exist (auth's receiver was connected earlier).
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="ledger_console_groups")
