"""Who LaunchSin serves in the sandbox: five organisations, their projects, users and the 30
source connections, each with the pace at which it delivers events.

Ids are fixed (uuid5), so a tenant keeps its identity when the database is provisioned again, and
the env file can name them before the database exists.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from hashlib import sha256

_NAMESPACE = uuid.UUID("0b7d5f2e-4c1a-4f0e-9a57-6a1d3c2b9e41")


def _id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


@dataclass(frozen=True)
class Org:
    key: str
    name: str

    @property
    def id(self) -> uuid.UUID:
        return _id("org", self.key)


@dataclass(frozen=True)
class Project:
    key: str
    org: Org
    name: str

    @property
    def id(self) -> uuid.UUID:
        return _id("project", self.key)


@dataclass(frozen=True)
class User:
    key: str
    email: str
    org: Org | None  # the organisation the user belongs to, if any
    role: str = "member"

    @property
    def id(self) -> uuid.UUID:
        return _id("user", self.key)


@dataclass(frozen=True)
class Connection:
    key: str
    project: Project
    type: str
    name: str
    every: float  # seconds between deliveries while active (the traffic jitters it by 30 %)
    retired_days: int | None = None  # inactive, and silent for that many days
    hottok: bool = True  # a Hotmart connection with its hotmart_secret set

    @property
    def id(self) -> uuid.UUID:
        return _id("connection", self.key)

    @property
    def active(self) -> bool:
        return self.retired_days is None

    @property
    def has_secret(self) -> bool:
        return self.type == "hotmart" and self.hottok


AURORA = Org("aurora", "Aurora Lançamentos")
DELTA = Org("delta", "Escola Delta")
VERTICE = Org("vertice", "Vértice Digital")
NOMADE = Org("nomade", "Casa Nômade")
BOREAL = Org("boreal", "Instituto Boreal")
ORGS = (AURORA, DELTA, VERTICE, NOMADE, BOREAL)

AURORA_MARCH = Project("aurora-march", AURORA, "Aurora · Lançamento de Março")
AURORA_EVERGREEN = Project("aurora-evergreen", AURORA, "Aurora · Perpétuo")
DELTA_BOOTCAMP = Project("delta-bootcamp", DELTA, "Delta · Bootcamp de Dados")
DELTA_MENTORING = Project("delta-mentoring", DELTA, "Delta · Mentoria")
VERTICE_IMMERSION = Project("vertice-immersion", VERTICE, "Vértice · Imersão")
VERTICE_COMMUNITY = Project("vertice-community", VERTICE, "Vértice · Comunidade")
NOMADE_PHOTO = Project("nomade-photo", NOMADE, "Nômade · Curso de Fotografia")
BOREAL_POSTGRAD = Project("boreal-postgrad", BOREAL, "Boreal · Pós-graduação")
BOREAL_WORKSHOPS = Project("boreal-workshops", BOREAL, "Boreal · Workshops")
PROJECTS = (AURORA_MARCH, AURORA_EVERGREEN, DELTA_BOOTCAMP, DELTA_MENTORING, VERTICE_IMMERSION,
            VERTICE_COMMUNITY, NOMADE_PHOTO, BOREAL_POSTGRAD, BOREAL_WORKSHOPS)

# The project the checks look at as a user: steady traffic, yet a small share of the table (about
# 6 %), so that its 7-day query is selective and the planner picks idx_canonical_events_project_time.
CHECK_PROJECT = AURORA_MARCH
CHECK_ORG = CHECK_PROJECT.org
CHECK_USER = User("oncall", "oncall@aurora-lancamentos.example", CHECK_ORG, "member")
# A member of another organisation: row level security must hide the check project from them.
OUTSIDER = User("outsider", "joana@escola-delta.example", DELTA, "admin")
USERS = (
    User("aurora-owner", "ana@aurora-lancamentos.example", AURORA, "owner"),
    User("delta-owner", "bruno@escola-delta.example", DELTA, "owner"),
    User("vertice-owner", "carla@vertice.example", VERTICE, "owner"),
    User("nomade-owner", "diego@casanomade.example", NOMADE, "owner"),
    User("boreal-owner", "elisa@institutoboreal.example", BOREAL, "owner"),
    CHECK_USER,
    OUTSIDER,
)

C = Connection
CONNECTIONS = (
    C("aurora-march-hotmart", AURORA_MARCH, "hotmart", "Hotmart · Método Aurora", 40),
    C("aurora-march-meta", AURORA_MARCH, "meta_ads", "Meta Ads · Aurora Março", 60),
    C("aurora-march-google", AURORA_MARCH, "google_ads", "Google Ads · Aurora Março", 150),
    C("aurora-evergreen-hotmart", AURORA_EVERGREEN, "hotmart", "Hotmart · Aurora Perpétuo", 15),
    C("aurora-evergreen-meta", AURORA_EVERGREEN, "meta_ads", "Meta Ads · Aurora Perpétuo", 40),
    C("aurora-evergreen-google", AURORA_EVERGREEN, "google_ads", "Google Ads · Aurora Perpétuo",
      120, retired_days=9),
    C("delta-bootcamp-hotmart", DELTA_BOOTCAMP, "hotmart", "Hotmart · Bootcamp de Dados", 5),
    C("delta-bootcamp-meta", DELTA_BOOTCAMP, "meta_ads", "Meta Ads · Bootcamp de Dados", 15),
    C("delta-bootcamp-google", DELTA_BOOTCAMP, "google_ads", "Google Ads · Bootcamp de Dados", 90),
    C("delta-bootcamp-hubspot", DELTA_BOOTCAMP, "hubspot", "HubSpot · Delta", 180),
    C("delta-mentoring-hotmart", DELTA_MENTORING, "hotmart", "Hotmart · Mentoria Delta", 60),
    C("delta-mentoring-meta", DELTA_MENTORING, "meta_ads", "Meta Ads · Mentoria Delta", 90,
      retired_days=20),
    C("delta-mentoring-google", DELTA_MENTORING, "google_ads", "Google Ads · Mentoria Delta", 120),
    C("vertice-immersion-meta", VERTICE_IMMERSION, "meta_ads", "Meta Ads · Imersão Vértice", 8),
    C("vertice-immersion-google", VERTICE_IMMERSION, "google_ads", "Google Ads · Imersão Vértice",
      25),
    C("vertice-immersion-hotmart", VERTICE_IMMERSION, "hotmart", "Hotmart · Imersão Vértice", 75),
    C("vertice-community-hotmart", VERTICE_COMMUNITY, "hotmart", "Hotmart · Comunidade Vértice",
      150),
    # Switched off because nobody ever set its hottok (its MISSING_SECRET letters are history).
    C("vertice-community-hotmart-old", VERTICE_COMMUNITY, "hotmart",
      "Hotmart · Comunidade (antigo)", 150, retired_days=12, hottok=False),
    C("nomade-photo-hotmart", NOMADE_PHOTO, "hotmart", "Hotmart · Fotografia Nômade", 40),
    C("nomade-photo-meta", NOMADE_PHOTO, "meta_ads", "Meta Ads · Fotografia Nômade", 90),
    C("nomade-photo-google", NOMADE_PHOTO, "google_ads", "Google Ads · Fotografia Nômade", 180),
    C("nomade-photo-hubspot", NOMADE_PHOTO, "hubspot", "HubSpot · Nômade", 180, retired_days=5),
    C("boreal-postgrad-hotmart", BOREAL_POSTGRAD, "hotmart", "Hotmart · Pós Boreal", 120),
    C("boreal-postgrad-meta", BOREAL_POSTGRAD, "meta_ads", "Meta Ads · Pós Boreal", 60),
    C("boreal-postgrad-hubspot", BOREAL_POSTGRAD, "hubspot", "HubSpot · Boreal", 180),
    C("boreal-workshops-google", BOREAL_WORKSHOPS, "google_ads", "Google Ads · Workshops Boreal",
      180),
    C("boreal-workshops-meta", BOREAL_WORKSHOPS, "meta_ads", "Meta Ads · Workshops Boreal", 100),
    C("boreal-workshops-hotmart", BOREAL_WORKSHOPS, "hotmart", "Hotmart · Workshops Boreal", 170),
    C("boreal-workshops-tiktok", BOREAL_WORKSHOPS, "tiktok_ads", "TikTok Ads · Workshops Boreal",
      150, retired_days=15),
    C("boreal-workshops-google-search", BOREAL_WORKSHOPS, "google_ads",
      "Google Ads · Pesquisa Boreal", 160),
)
del C

ACTIVE = tuple(c for c in CONNECTIONS if c.active)

# What each kind of source reports, weighted by repetition.
EVENT_TYPES = {
    "hotmart": ("purchase_completed",) * 6 + ("checkout_started",) * 3 + ("refund_created",),
    "meta_ads": ("ad_impression",) * 6 + ("ad_click",) * 3 + ("lead_created",),
    "google_ads": ("ad_impression",) * 6 + ("ad_click",) * 3 + ("lead_created",),
    "tiktok_ads": ("ad_impression",) * 7 + ("ad_click",) * 3,
    "hubspot": ("lead_created",) * 3 + ("meeting_scheduled",),
}


def connection(key: str) -> Connection:
    return next(c for c in CONNECTIONS if c.key == key)


def hotmart_secret(key: str, connection_id: uuid.UUID) -> str:
    """The hottok of a Hotmart connection, derived from the sandbox's key so heal can restore it."""
    return hmac.new(key.encode(), connection_id.bytes, sha256).hexdigest()[:40]
