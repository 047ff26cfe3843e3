"""What the sandbox's visitors look like: the five shops, and the pools a visit is drawn from.

Shared by the seed (which hands the pools to SQL as arrays) and the live traffic.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime

ALLOWED_ORIGINS = ("https://www.sandbox-shop.example", "https://sandbox-shop.example")

# Fixed ids, so a site keeps its identity when its database is provisioned again.
_SITE_NAMESPACE = uuid.UUID("6c1f0a52-8a51-4d0b-9d43-3f1f3c0e5a10")


@dataclass(frozen=True)
class Site:
    public_id: str
    domain: str
    name: str

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(_SITE_NAMESPACE, self.public_id)

    @property
    def owner_id(self) -> uuid.UUID:
        return uuid.uuid5(_SITE_NAMESPACE, f"owner:{self.public_id}")


SITES = (
    Site("sbx-shop", "www.sandbox-shop.example", "Sandbox Shop"),
    Site("sbx-dental", "dental.sandbox-clinic.example", "Sandbox Dental"),
    Site("sbx-movers", "sandbox-movers.example", "Sandbox Movers"),
    Site("sbx-legal", "sandbox-legal.example", "Sandbox Legal"),
    Site("sbx-garden", "sandbox-garden.example", "Sandbox Garden"),
)

PAGES = ("/", "/pricing", "/contact", "/services", "/blog/spring-offer", "/book", "/about")
DEVICES = ("mobile", "mobile", "desktop", "tablet")
OPERATING_SYSTEMS = ("iOS", "Android", "Windows", "macOS")
BROWSERS = ("Safari", "Chrome", "Chrome", "Firefox", "Edge")
CITIES = ("Istanbul", "Ankara", "Izmir", "Bursa", "Antalya")
DISTRICTS = ("Kadikoy", "Cankaya", "Konak", "Nilufer", "Muratpasa")
ACTIONS = ("page_view", "scroll_depth", "cta_click", "phone_click", "form_submit")
GCLID_SHARE = 3  # one visit in three comes from a Google Ads click


@dataclass(frozen=True)
class Visit:
    """One tracker payload as the worker receives it from the queue."""

    event_id: uuid.UUID  # the producer's ingest id: processed_signals' dedup key
    site: Site
    session_id: uuid.UUID
    at: datetime  # the client's clock, in UTC
    columns: dict[str, object]  # session columns besides ids and times
    actions: tuple[str, ...]


def random_visit(rng: random.Random, at: datetime) -> Visit:
    site = rng.choice(SITES)
    page = rng.choice(PAGES)
    paid = rng.randrange(GCLID_SHARE) == 0
    columns: dict[str, object] = {
        "ip_address": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "entry_page": page,
        "exit_page": rng.choice(PAGES),
        "gclid": f"sbx-{uuid.UUID(int=rng.getrandbits(128)).hex}" if paid else None,
        "device_type": rng.choice(DEVICES),
        "device_os": rng.choice(OPERATING_SYSTEMS),
        "browser": rng.choice(BROWSERS),
        "city": rng.choice(CITIES),
        "district": rng.choice(DISTRICTS),
        "fingerprint": uuid.UUID(int=rng.getrandbits(128)).hex[:16],
        "lead_score": rng.randrange(0, 100),
        "attribution_source": "google_ads" if paid else "organic",
        "utm_source": "google" if paid else None,
        "utm_medium": "cpc" if paid else None,
        "utm_campaign": "sandbox-spring" if paid else None,
        "traffic_source": "google",
        "traffic_medium": "cpc" if paid else "organic",
    }
    actions = ("page_view", *rng.choices(ACTIONS, k=rng.randrange(0, 4)))
    return Visit(uuid.UUID(int=rng.getrandbits(128), version=4), site,
                 uuid.UUID(int=rng.getrandbits(128), version=4), at, columns, actions)
