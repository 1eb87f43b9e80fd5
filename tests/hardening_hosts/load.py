"""A bounded charge load for the fault tests: client threads send deducts of 1 credit, each
with a fresh transaction id, and retry that same id (deducts are idempotent by it) after a
dropped connection or a retryable answer, until it gets a final answer or the load's deadline.

Every attempt is recorded, so a test can check what clients saw during a fault, and which
charges the service acknowledged (answered 200), to compare with the ledger."""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from credits_project.json import loads

RETRY_PAUSE_SECONDS = 0.05


@dataclass(frozen=True)
class Attempt:
    transaction_id: str
    status: int | None  # None: the connection failed before an answer
    body: dict[str, Any]
    seconds: float
    started: float  # time.monotonic() when sent

    @property
    def error(self) -> dict[str, Any]:
        return self.body.get("error", {})


@dataclass
class ChargeLoad:
    base_url: str
    api_key: str
    customer_id: str
    clients: int = 8
    seconds: float = 6.0
    max_charges_per_client: int = 2_000
    request_timeout: float = 10.0
    id_prefix: str = ""  # tells apart the transaction ids of loads run side by side
    attempts: list[Attempt] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> "ChargeLoad":
        self.started = time.monotonic()
        self.stop_sending = self.started + self.seconds
        # Retries of a charge already sent may go on a little past the sending window.
        self.give_up = self.stop_sending + 2 * self.request_timeout
        self._threads = [
            threading.Thread(target=self._client, args=(k,)) for k in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def wait(self) -> "ChargeLoad":
        for thread in self._threads:
            thread.join(max(1.0, self.give_up + 5 - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "a load client hung"
        assert not self.failures, f"load clients failed: {self.failures!r}"
        return self

    def _client(self, number: int) -> None:
        try:
            with httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=self.request_timeout,
            ) as client:
                for n in range(self.max_charges_per_client):
                    if time.monotonic() >= self.stop_sending:
                        return
                    self._charge(client, f"{self.id_prefix}c{number}-{n}")
        except BaseException as exc:  # reported by wait(): a thread must not fail silently
            self.failures.append(exc)

    def _charge(self, client: httpx.Client, transaction_id: str) -> None:
        body = {"customer_id": self.customer_id, "transaction_id": transaction_id, "amount": 1}
        while time.monotonic() < self.give_up:
            sent = time.monotonic()
            try:
                response = client.post("/v1/billing/deduct", json=body)
                status, parsed = response.status_code, parse(response)
            except httpx.TransportError:
                status, parsed = None, {}
            self._record(Attempt(transaction_id, status, parsed, time.monotonic() - sent, sent))
            retryable = status is None or parsed.get("error", {}).get("retryable") is True
            if not retryable:
                return
            time.sleep(RETRY_PAUSE_SECONDS)
        with self._lock:
            self.unanswered.append(transaction_id)

    def _record(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def acknowledged(self) -> set[str]:
        return {a.transaction_id for a in self.attempts if a.status == 200}

    def statuses(self) -> Counter:
        return Counter(a.status for a in self.attempts)

    def answers_other_than_200(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is not None and a.status != 200]


def parse(response: httpx.Response) -> dict[str, Any]:
    try:
        return loads(response.content)
    except ValueError:
        return {"unparsed": response.text[:500]}
