"""The webhook tests' receivers listen on loopback: private addresses are allowed here, as
`WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true` allows them in development; the tests of the address
rule itself (test_addresses.py) set it back."""

import pytest


@pytest.fixture(autouse=True)
def private_addresses_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
