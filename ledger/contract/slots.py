"""Request bodies of the slot calls (`/v1/slot/...`), as the JS SDK sends them."""

from credits_project.errors import CustomerIdRequired, ResourceIdRequired, WalletRequired
from ledger.contract.fields import IdField, LeaseField, SlotAmountField, TextField
from ledger.contract.requests import RequestSerializer

NAME_LENGTH = 64


class CapacityRequestSerializer(RequestSerializer):
    """A grant or a revoke of capacity on the pool (`wallet`, `source`)."""

    customer_id = IdField(
        missing_error=CustomerIdRequired, help_text="A grant creates the customer if unknown."
    )
    wallet = IdField(missing_error=WalletRequired, max_length=NAME_LENGTH)
    amount = SlotAmountField(help_text="Slots, a whole number.")
    source = TextField(min_length=1, max_length=NAME_LENGTH, default="default")
    idempotency_key = IdField(
        help_text="Send one: a repeat answers the pool with `is_idempotent_replay` and changes "
        "nothing; the key reused with other parameters is `idempotency_conflict`."
    )
    description = TextField(max_length=1000)


class ClaimRequestSerializer(RequestSerializer):
    customer_id = IdField(missing_error=CustomerIdRequired)
    wallet = IdField(missing_error=WalletRequired, max_length=NAME_LENGTH)
    resource_id = IdField(
        missing_error=ResourceIdRequired,
        help_text="What holds the slots; claiming it again returns the same holding.",
    )
    source = TextField(
        min_length=1,
        max_length=NAME_LENGTH,
        help_text="The pool to take; without it, the wallet's oldest pool with room.",
    )
    amount = SlotAmountField(default=1)
    description = TextField(max_length=1000)
    ttl_seconds = LeaseField(
        help_text="A lease: the holding is released by the scheduler this many seconds after "
        "the claim (or its last repeat, which renews it). Without it the holding is kept "
        "until released."
    )


class ReleaseRequestSerializer(RequestSerializer):
    customer_id = IdField(missing_error=CustomerIdRequired)
    wallet = IdField(missing_error=WalletRequired, max_length=NAME_LENGTH)
    resource_id = IdField(missing_error=ResourceIdRequired)
