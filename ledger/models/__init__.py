"""The credits ledger.

Design overview
---------------
* A `CreditAccount` is created by each deposit and holds that deposit's `total`, how much of it is
  `used` and how much is `frozen` (reserved by open freezes). `available = total - used - frozen`.
  The database checks `0 <= used`, `0 <= frozen`, `used + frozen <= total`, `total > 0`. Which
  accounts count at an instant (`active_at`) and the order charges draw them in
  (`in_consumption_order`) are stated once, in `accounts`.
* A `Transaction` is one identified operation: a deposit with an idempotency key, a freeze or a
  deduct, named by the client's `transaction_id` (a deposit's idempotency key). It holds the
  request fingerprint that tells a retry from a reuse, the freeze's state machine and its
  auto-settlement deadlines. Deposit keys and freeze/deduct ids live in separate namespaces,
  each unique per project.
* A `LedgerEntry` is one append-only change of one account by one operation (GRANT, FREEZE,
  CONSUME, UNFREEZE, EXPIRE), carrying the client's `transaction_id`. Replaying the entries
  reproduces every account's counters (`ledger.rules.Replayed`). A freeze's per-account holdings
  are its FREEZE entries, and the answer to a retried operation is rebuilt from its entries and
  its transaction.
* `SpentCredits` sums, per customer and wallet, the accounts used up to the last credit whose
  expiry is not recorded yet, so a balance read touches only open accounts however many
  deposits a customer has spent.
* A `CreditLine` lets a trusted customer spend past its credits up to a limit, as debt that
  its next deposits pay back first; refunds put a charge's credits back on the accounts it
  drew, and a void ends an account's unused credits early (see `credit_lines`,
  `ledger.services.refunds`, `ledger.services.voids`).
* A `Schedule` grants its customer credits once per period, each grant a keyed deposit, and
  rolls a capped part of what expires unused into the next period (see `schedules`).
* Slots (`SlotPool`, `SlotHolding`, `SlotEvent`) count concurrency capacity and what
  resources hold of it; entitlements (`Entitlement`, `EntitlementEvent`) are a customer's
  feature values with validity windows (see `slots`, `entitlements`).
* Counters only ever change inside a service function (`ledger/services/`), in one database
  transaction, with the customer's row locked first.

This package is the bottom floor with `ledger.rules`, `ledger.money`, `ledger.results` and
`ledger.contract`: it imports none of the services, selectors or interfaces above it.
"""

from ledger.models.accounts import CreditAccount, Validity
from ledger.models.choices import BusinessType, OperationType
from ledger.models.credit_lines import CreditLimitChange, CreditLine
from ledger.models.entitlements import Entitlement, EntitlementEvent
from ledger.models.entries import LedgerCounter, LedgerEntry
from ledger.models.operators import OperatorAction
from ledger.models.schedules import Schedule, ScheduleTerms
from ledger.models.slots import SlotEvent, SlotHolding, SlotPool
from ledger.models.spent import SpentCredits
from ledger.models.transactions import Transaction

# Webhook models live in their own package; imported here so the ledger app owns them.
from ledger.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "BusinessType",
    "CreditAccount",
    "CreditLimitChange",
    "CreditLine",
    "Entitlement",
    "EntitlementEvent",
    "LedgerCounter",
    "LedgerEntry",
    "OperationType",
    "OperatorAction",
    "Schedule",
    "ScheduleTerms",
    "SlotEvent",
    "SlotHolding",
    "SlotPool",
    "SpentCredits",
    "Transaction",
    "Validity",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
