-- LaunchSin's database in the shape production has (nicoolasmr/launchsin at 2e9c4ab): the tables,
-- functions and row level security runbook 001 relies on. Written for the sandbox from
-- RUNBOOK-ITEMS.md section 2, not taken from upstream migrations. The dead-letter columns the
-- code needs but no migration creates are in dlq_columns.sql, canonical_events' unique key and
-- indexes in indexes.sql (built after the bulk load), policies in policies.sql, privileges in
-- grants.sql.

-- The auth schema (auth.users, auth.uid()) comes from sandbox/supabase_auth.sql.

-- Tenancy ------------------------------------------------------------------------------------

CREATE TYPE public.org_role AS ENUM ('owner', 'admin', 'member', 'viewer');

CREATE TABLE public.orgs (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.org_members (
    org_id     uuid NOT NULL REFERENCES public.orgs (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role       public.org_role NOT NULL DEFAULT 'member',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX idx_org_members_user ON public.org_members (user_id);

CREATE TABLE public.projects (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES public.orgs (id) ON DELETE CASCADE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_projects_org ON public.projects (org_id);

CREATE TABLE public.project_members (
    project_id uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role       text NOT NULL DEFAULT 'viewer',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);

-- Sources ------------------------------------------------------------------------------------

-- config_json holds a Hotmart connection's hottok in clear ({"hotmart_secret": ...}), as upstream.
CREATE TABLE public.source_connections (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES public.orgs (id) ON DELETE CASCADE,
    project_id       uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
    type             text NOT NULL,
    name             text NOT NULL,
    config_json      jsonb NOT NULL DEFAULT '{}',
    is_active        boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Sync bookkeeping (migration 0007).
    state_json       jsonb NOT NULL DEFAULT '{}',
    last_sync_at     timestamptz,
    last_success_at  timestamptz,
    last_error_at    timestamptz,
    last_error_class text
);
CREATE INDEX idx_source_connections_project ON public.source_connections (project_id);
CREATE INDEX idx_source_connections_org ON public.source_connections (org_id);

-- One row per business event, whatever the source. event_time is the source's own clock,
-- ingested_at ours. A plain table: partitioning is only the runbook's plan.
CREATE TABLE public.canonical_events (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id               uuid NOT NULL REFERENCES public.orgs (id) ON DELETE CASCADE,
    project_id           uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
    source_connection_id uuid NOT NULL REFERENCES public.source_connections (id) ON DELETE CASCADE,
    event_type           text NOT NULL CHECK (event_type IN (
                             'ad_impression', 'ad_click', 'lead_created', 'checkout_started',
                             'purchase_completed', 'refund_created', 'meeting_scheduled')),
    event_time           timestamptz NOT NULL,
    idempotency_key      text NOT NULL,
    actor_json           jsonb NOT NULL DEFAULT '{}',
    entities_json        jsonb NOT NULL DEFAULT '{}',
    value_json           jsonb NOT NULL DEFAULT '{}',
    raw_ref_json         jsonb NOT NULL DEFAULT '{}',
    ingested_at          timestamptz NOT NULL DEFAULT now()
);

-- Dead letters as migrated (0002); status goes pending -> resolved | dead.
CREATE TABLE public.dlq_events (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    connection_id uuid NOT NULL REFERENCES public.source_connections (id) ON DELETE CASCADE,
    payload_json  jsonb NOT NULL,
    error_message text,
    status        text NOT NULL DEFAULT 'pending',
    retry_count   integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_dlq_events_connection ON public.dlq_events (connection_id);
CREATE INDEX idx_dlq_events_status ON public.dlq_events (status);
CREATE INDEX idx_dlq_events_created ON public.dlq_events (created_at);

-- Integration runs and alerts (the integrations health page); nothing in the sandbox writes them.
CREATE TABLE public.sync_runs (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source_connection_id uuid NOT NULL REFERENCES public.source_connections (id) ON DELETE CASCADE,
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'running', 'success', 'failed', 'partial')),
    started_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    records_processed    integer NOT NULL DEFAULT 0,
    error_message        text
);

CREATE TABLE public.integration_alerts (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id           uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
    source_connection_id uuid REFERENCES public.source_connections (id) ON DELETE CASCADE,
    severity             text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message              text NOT NULL,
    is_resolved          boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now()
);

-- Read-only RPCs -----------------------------------------------------------------------------

-- SECURITY DEFINER as upstream: they read past row level security, so EXECUTE is granted only
-- to the roles that should see every project (grants.sql).
CREATE FUNCTION public.get_project_event_stats(p_project_id uuid)
RETURNS TABLE (event_type text, count bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT e.event_type, count(*)
    FROM public.canonical_events e
    WHERE e.project_id = p_project_id AND e.event_time >= now() - interval '24 hours'
    GROUP BY e.event_type
    ORDER BY count(*) DESC
$$;

CREATE FUNCTION public.get_connection_event_lag(p_connection_id uuid)
RETURNS interval
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT now() - max(e.event_time)
    FROM public.canonical_events e
    WHERE e.source_connection_id = p_connection_id
$$;
