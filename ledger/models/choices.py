"""The ledger's vocabularies: what a charge or grant is for, and what an entry did."""

from django.db import models


class BusinessType(models.TextChoices):
    UNDEFINED = "UNDEFINED"
    TASK = "TASK"
    ORDER = "ORDER"
    MEMBERSHIP = "MEMBERSHIP"
    SUBSCRIPTION = "SUBSCRIPTION"
    FREE_TRIAL = "FREE_TRIAL"
    ADMIN_GRANT = "ADMIN_GRANT"
    TOKEN_USAGE = "TOKEN_USAGE"
    # What a schedule's expiring period grant carried into the next period.
    ROLLOVER = "ROLLOVER"


class OperationType(models.TextChoices):
    GRANT = "GRANT"
    FREEZE = "FREEZE"
    CONSUME = "CONSUME"
    UNFREEZE = "UNFREEZE"
    EXPIRE = "EXPIRE"
    # Corrections: a charge's credits put back, an account's unused credits ended early.
    REFUND = "REFUND"
    VOID = "VOID"
    # Credit lines: credits spent past the customer's own, and deposits paying them back.
    DEBT = "DEBT"
    REPAY = "REPAY"
