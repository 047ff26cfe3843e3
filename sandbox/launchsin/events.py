"""Canonical events as LaunchSin's connectors build them (the shapes seed.py writes in bulk).

Hotmart webhooks are mapped as upstream's HotmartConnector does; the ad platforms and HubSpot
are polled upstream, and here simply produce events of their kind.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.launchsin import tenants
from sandbox.launchsin.tenants import Connection

HOTMART_EVENTS = {  # webhook event -> canonical event type
    "PURCHASE_COMPLETE": "purchase_completed",
    "PURCHASE_APPROVED": "purchase_completed",
    "PURCHASE_REFUNDED": "refund_created",
    "PURCHASE_CHARGEBACK": "refund_created",
    "PURCHASE_CANCELED": "checkout_started",
}
HOTMART_NAMES = {"purchase_completed": "PURCHASE_APPROVED", "refund_created": "PURCHASE_REFUNDED",
                 "checkout_started": "PURCHASE_CANCELED"}


@dataclass(frozen=True)
class CanonicalEvent:
    org_id: uuid.UUID
    project_id: uuid.UUID
    source_connection_id: uuid.UUID
    event_type: str
    event_time: datetime
    idempotency_key: str
    actor_json: dict[str, Any] = field(default_factory=dict)
    entities_json: dict[str, Any] = field(default_factory=dict)
    value_json: dict[str, Any] = field(default_factory=dict)
    raw_ref_json: dict[str, Any] = field(default_factory=dict)

    def marked(self, marker: str) -> CanonicalEvent:
        """The same event tagged as a fault's, so that heal finds it."""
        return replace(self, raw_ref_json={**self.raw_ref_json, "sandbox_fault": marker})


def pii_hash(value: str, org_id: uuid.UUID) -> str:
    # Upstream hashes with an org-salted HMAC; a salted digest is enough for stand-in data.
    return hashlib.sha256(f"{org_id}:{value.strip().lower()}".encode()).hexdigest()


def random_event(rng: random.Random, connection: Connection, at: datetime,
                 lag: timedelta = timedelta(0)) -> CanonicalEvent:
    """One delivery from `connection` received at `at`; the source dated it 3-60 s earlier."""
    event_type = rng.choice(tenants.EVENT_TYPES[connection.type])
    event_time = at - lag - timedelta(seconds=rng.uniform(3, 60))
    ref = uuid.UUID(int=rng.getrandbits(128)).hex[:16].upper()
    org = connection.project.org.id
    raw_ref = {"source_event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
               "source": connection.type}
    if connection.type == "hotmart":
        return CanonicalEvent(
            org, connection.project.id, connection.id, event_type, event_time,
            f"hotmart_HP{ref}_{HOTMART_NAMES[event_type]}",
            {"email_hash": pii_hash(f"{ref}@mail", org)},
            {"product_id": str(1000 + rng.randrange(256)), "order_id": f"HP{ref}",
             "payment_type": rng.choice(("CREDIT_CARD", "PIX", "BILLET"))},
            {"amount": 97 + 7 * rng.randrange(256), "currency": "BRL", "status": "APPROVED"},
            raw_ref,
        )
    prefix = connection.type.split("_")[0]
    seen = event_type in ("ad_impression", "ad_click")
    return CanonicalEvent(
        org, connection.project.id, connection.id, event_type, event_time,
        f"{prefix}_{ref}_{event_type}",
        {} if seen else {"email_hash": pii_hash(f"{ref}@mail", org)},
        {"campaign_id": f"cmp_{ref[:6]}", "ad_id": f"ad_{ref[-8:]}"},
        {"amount": round(rng.uniform(0.05, 1.05), 2), "currency": "BRL"} if seen else {},
        raw_ref,
    )


def from_hotmart(payload: dict[str, Any], connection_id: uuid.UUID, org_id: uuid.UUID,
                 project_id: uuid.UUID) -> list[CanonicalEvent]:
    """Upstream's mapping of a Hotmart webhook; an event it does not know maps to nothing.

    Raises KeyError, TypeError or ValueError on a payload without the fields it needs, which the
    webhook turns into an UNEXPECTED_ERROR dead letter, as upstream."""
    event_type = HOTMART_EVENTS.get(str(payload.get("event")))
    if event_type is None:
        return []
    purchase = payload["data"]["purchase"]
    seconds = purchase.get("approved_date") if event_type == "purchase_completed" else None
    event_time = datetime.fromtimestamp(float(seconds or purchase["order_date"]), tz=UTC)
    buyer = purchase.get("buyer") or {}
    actor = {f"{k}_hash": pii_hash(str(buyer[k]), org_id) for k in ("email", "phone")
             if buyer.get(k)}
    return [CanonicalEvent(
        org_id, project_id, connection_id, event_type, event_time,
        f"hotmart_{purchase['transaction']}_{payload['event']}", actor,
        {"product_id": str(purchase["product"]["id"]), "product_name": purchase["product"]["name"],
         "order_id": purchase["transaction"],
         "payment_type": (purchase.get("payment") or {}).get("type")},
        {"amount": purchase["price"]["value"], "currency": purchase["price"]["currency_code"],
         "status": purchase.get("status")},
        {"source_event_id": str(payload["id"]), "source": "hotmart",
         "payload_version": payload.get("version")},
    )]
