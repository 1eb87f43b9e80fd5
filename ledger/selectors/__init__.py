"""Reads shared by the API and the console. None of them writes or locks; on SQLite they run
outside any transaction, so they never wait for the write lock."""

from ledger.selectors.balances import customer_balance
from ledger.selectors.ledger_pages import LedgerQuery, customer_of, ledger_page
from ledger.selectors.transactions import transaction_state

__all__ = ["LedgerQuery", "customer_balance", "customer_of", "ledger_page", "transaction_state"]
