"""Who RevenueOS serves in the sandbox: four organisations, their projects and owners, the
payment providers each has integrated, and each provider's pace of webhook deliveries.

Ids are fixed (uuid5), so a tenant keeps its identity when the database is provisioned again.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from hashlib import sha256

_NAMESPACE = uuid.UUID("5b1f3c2e-7d4a-4e19-8f0b-2c6a9e4d1b73")


def _id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


@dataclass(frozen=True)
class Org:
    key: str
    name: str

    @property
    def id(self) -> uuid.UUID:
        return _id("org", self.key)

    @property
    def owner_id(self) -> uuid.UUID:
        return _id("owner", self.key)


@dataclass(frozen=True)
class Project:
    key: str
    org: Org
    name: str

    @property
    def id(self) -> uuid.UUID:
        return _id("project", self.key)


@dataclass(frozen=True)
class Provider:
    """A payment provider and how often one of its integrations delivers a webhook (seconds,
    jittered by 30 % in the traffic)."""

    name: str
    every: float
    event_types: tuple[str, ...]
    canonical_type: str


@dataclass(frozen=True)
class Integration:
    project: Project
    provider: Provider
    active: bool = True

    @property
    def id(self) -> uuid.UUID:
        return _id("integration", f"{self.project.key}:{self.provider.name}")

    @property
    def org(self) -> Org:
        return self.project.org

    @property
    def webhook_key(self) -> str:
        return f"whk_{self.id.hex[:20]}"


LUMEN = Org("lumen", "Lumen Educação")
ORBITA = Org("orbita", "Órbita Fitness")
PRAXIS = Org("praxis", "Praxis Consultoria")
SAFRA = Org("safra", "Safra Digital")
ORGS = (LUMEN, ORBITA, PRAXIS, SAFRA)

LUMEN_COURSES = Project("lumen-courses", LUMEN, "Lumen · Cursos")
LUMEN_MENTORING = Project("lumen-mentoring", LUMEN, "Lumen · Mentoria")
ORBITA_PLANS = Project("orbita-plans", ORBITA, "Órbita · Planos")
PRAXIS_RETAINERS = Project("praxis-retainers", PRAXIS, "Praxis · Contratos")
SAFRA_STORE = Project("safra-store", SAFRA, "Safra · Loja")
SAFRA_SUBSCRIPTIONS = Project("safra-subscriptions", SAFRA, "Safra · Assinaturas")
PROJECTS = (LUMEN_COURSES, LUMEN_MENTORING, ORBITA_PLANS, PRAXIS_RETAINERS, SAFRA_STORE,
            SAFRA_SUBSCRIPTIONS)

STRIPE = Provider("stripe", 6, ("charge.succeeded", "invoice.paid", "charge.refunded"), "payment")
HOTMART = Provider("hotmart", 12, ("PURCHASE_APPROVED", "PURCHASE_COMPLETE", "PURCHASE_REFUNDED"),
                   "order")
ASAAS = Provider("asaas", 45, ("PAYMENT_RECEIVED", "PAYMENT_CONFIRMED", "PAYMENT_OVERDUE"),
                 "payment")
# Open-finance bank data: a batch about every 75 minutes, so it needs its own freshness window
# (REVENUEOS_PROVIDER_MAX_AGE_MINUTES in the env file).
BELVO = Provider("belvo", 75 * 60, ("TRANSACTIONS_NEW", "ACCOUNTS_UPDATED"), "payout")
PROVIDERS = (STRIPE, HOTMART, ASAAS, BELVO)
BELVO_WINDOW_MINUTES = 180

INTEGRATIONS = (
    Integration(LUMEN_COURSES, STRIPE),
    Integration(LUMEN_COURSES, HOTMART),
    Integration(LUMEN_MENTORING, HOTMART),
    Integration(ORBITA_PLANS, STRIPE),
    Integration(ORBITA_PLANS, ASAAS),
    Integration(PRAXIS_RETAINERS, ASAAS),
    Integration(PRAXIS_RETAINERS, HOTMART),
    Integration(SAFRA_STORE, STRIPE),
    Integration(SAFRA_SUBSCRIPTIONS, BELVO),
    # Disconnected months ago: no webhooks, and the freshness view leaves it out.
    Integration(SAFRA_SUBSCRIPTIONS, ASAAS, active=False),
)
ACTIVE = tuple(i for i in INTEGRATIONS if i.active)


def of(provider: Provider) -> tuple[Integration, ...]:
    """The active integrations of one provider."""
    return tuple(i for i in ACTIVE if i.provider == provider)


def webhook_secret(key: str, integration: Integration) -> str:
    """An integration's webhook signing secret, derived from the home's secret key."""
    return hmac.new(key.encode(), integration.id.bytes, sha256).hexdigest()[:32]
