from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Credits ledger"

    def ready(self) -> None:
        from ledger.console_groups import on_post_migrate
        from ledger.money import install_exact_sum

        # Every SQLite connection can sum micro-credits past 64 bits (`ledger.money`).
        connection_created.connect(install_exact_sum, dispatch_uid="ledger_exact_sum")

        # After the permissions of this app exist (auth's receiver was connected earlier).
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="ledger_console_groups")
