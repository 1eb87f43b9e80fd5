"""Reads shared by the API and the console. None of them writes or locks; on SQLite they run
outside any transaction, so they never wait for the write lock."""

from ledger.selectors.balances import customer_balance
from ledger.selectors.entitlements import (
    EntitlementEventQuery,
    entitlement_customer,
    entitlement_event_page,
    entitlement_of,
    entitlements_of,
)
from ledger.selectors.history import customer_balance_as_of
from ledger.selectors.ledger_pages import LedgerQuery, customer_of, ledger_page
from ledger.selectors.projection import customer_balance_projected
from ledger.selectors.quotes import quote
from ledger.selectors.schedules import customer_schedules, schedule
from ledger.selectors.slots import SlotEventQuery, customer_pools, slot_event_page
from ledger.selectors.transactions import transaction_state

__all__ = [
    "EntitlementEventQuery",
    "LedgerQuery",
    "SlotEventQuery",
    "customer_balance",
    "customer_balance_as_of",
    "customer_balance_projected",
    "customer_of",
    "customer_pools",
    "customer_schedules",
    "entitlement_customer",
    "entitlement_event_page",
    "entitlement_of",
    "entitlements_of",
    "ledger_page",
    "quote",
    "schedule",
    "slot_event_page",
    "transaction_state",
]
