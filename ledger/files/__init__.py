"""Files the service reads: grant files for bulk grants (`grants`). Readers turn each row into
the request a service takes, validated by the request contract, and hand it on."""
