"""Every operation that changes credits. Each is one function, one database transaction."""

from ledger.services.charges import deduct, freeze
from ledger.services.deposits import Profile, deposit
from ledger.services.scheduled import expire_due, settle_due
from ledger.services.settlements import consume, unfreeze

__all__ = [
    "Profile",
    "consume",
    "deduct",
    "deposit",
    "expire_due",
    "freeze",
    "settle_due",
    "unfreeze",
]
