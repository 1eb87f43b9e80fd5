"""The scheduler's notices: `credits.expiring`, once per account, a project's configured
number of days before an account with credits left expires."""

import datetime as dt
from itertools import groupby

from django.db import transaction
from django.utils import timezone

from credits_project.sql import fetch, instant
from customers.models import Project
from ledger.models.accounts import ACCOUNT
from ledger.services import events
from ledger.services.locks import lock_customer_unless_busy
from ledger.services.plan import Plan, apply
from ledger.services.settlements import SCHEDULER_ACTOR
from ledger.webhooks.models import EventType


def notify_expiring(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Write the `credits.expiring` event of each account, of the projects that ask for them
    and have an enabled endpoint, that expires within the notice and has credits left, unless
    it already has one. Returns how many it wrote."""
    now = now or timezone.now()
    written = 0
    projects = Project.objects.filter(
        expiring_notice_days__isnull=False, webhook_endpoints__enabled=True
    ).distinct()
    for project in projects:
        horizon = now + dt.timedelta(days=project.expiring_notice_days)
        found = fetch(
            f"SELECT {ACCOUNT.sql('a')}, c.external_id FROM ledger_creditaccount a "
            "JOIN customers_customer c ON c.id = a.customer_id "
            "WHERE c.project_id = %s AND a.expiry_recorded_at IS NULL "
            "AND a.expires_at > %s AND a.expires_at <= %s AND a.used + a.frozen < a.total "
            "AND NOT EXISTS (SELECT 1 FROM ledger_webhookevent e "
            "WHERE e.dedupe_key = %s || CAST(a.id AS TEXT)) "
            "ORDER BY a.customer_id, a.id LIMIT %s",
            [project.pk, instant(now), instant(horizon), f"{EventType.EXPIRING}:", batch_size],
        )
        accounts = [(ACCOUNT.load_row(row), row[ACCOUNT.width]) for row in found]
        for customer_pk, group in groupby(accounts, key=lambda pair: pair[0].customer_id):
            with transaction.atomic():
                if not lock_customer_unless_busy(customer_pk):
                    continue
                plan = Plan(actor=SCHEDULER_ACTOR, now=now)
                for account, customer_id in group:
                    events.expiring(
                        plan,
                        project=project,
                        customer_id=customer_id,
                        account=account,
                        days=project.expiring_notice_days,
                    )
                apply(plan)
                written += len(plan.events)
    return written
