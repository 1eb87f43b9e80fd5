"""Webhooks: signed notices of a customer's credits, sent to each project's endpoints.

Events are written to an outbox (`WebhookEvent`) in the transaction that makes the change they
tell of (`events`), so a committed change always has its event and a rolled-back one never does.
The scheduler fans each event out to the project's matching endpoints as `WebhookDelivery` rows
and sends them (`delivery`), signed per the Standard Webhooks specification, retrying with
exponential backoff, at least once, in order per endpoint and customer.
"""
