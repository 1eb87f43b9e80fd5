"""Every operation that changes credits. Each is one function, one database transaction, and
the API, the console and the commands all call these same functions.

Each follows the same steps: lock the customer (`locks`), find an earlier request with the same
identity and replay it (`idempotency`, `replays`), read the accounts it draws on (their
loads are on the models), decide by the money rules (`ledger.rules`) what to write into a
`plan.Plan`, events included (`events`), and apply it (`plan.apply`).
"""

from ledger.services.charges import deduct, freeze
from ledger.services.corrections import expire_account
from ledger.services.credit_limits import set_credit_limit
from ledger.services.deposits import Profile, deposit
from ledger.services.entitlements import remove_entitlement, set_entitlement
from ledger.services.refunds import refund
from ledger.services.scheduled import expire_due, release_due, settle_due
from ledger.services.schedules import (
    cancel_schedule,
    create_schedule,
    grant_due,
    update_schedule,
)
from ledger.services.settlements import consume, unfreeze
from ledger.services.slots import claim, grant_capacity, release, revoke_capacity
from ledger.services.voids import void

__all__ = [
    "Profile",
    "cancel_schedule",
    "claim",
    "consume",
    "create_schedule",
    "deduct",
    "deposit",
    "expire_account",
    "expire_due",
    "freeze",
    "grant_capacity",
    "grant_due",
    "refund",
    "release",
    "release_due",
    "remove_entitlement",
    "revoke_capacity",
    "set_credit_limit",
    "set_entitlement",
    "settle_due",
    "unfreeze",
    "update_schedule",
    "void",
]
