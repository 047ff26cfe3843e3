-- RevenueOS's database in the shape a replay of its migrations produces
-- (nicoolasmr/ferramenta-financeira at c3fe2fa), reduced to what runbook 003 touches. Written
-- for the sandbox from RUNBOOK-ITEMS.md section 3, not taken from upstream migrations. The
-- dunning tables are in dunning.sql, their idempotency key in dunning_key.sql, row level security
-- in policies.sql, privileges in grants.sql, autovacuum settings in tuning.sql.

-- The auth schema (auth.users, auth.uid()) comes from sandbox/supabase_auth.sql.

-- Tenancy ------------------------------------------------------------------------------------

CREATE TABLE public.organizations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    slug       text UNIQUE NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The real membership table (the dunning migration's policies name organization_members, which
-- does not exist: that is why the migration fails on a replay).
CREATE TABLE public.memberships (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, user_id)
);

CREATE TABLE public.projects (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    name       text NOT NULL,
    created_at timestamptz DEFAULT now()
);

CREATE FUNCTION public.get_my_org_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$ SELECT org_id FROM public.memberships WHERE user_id = auth.uid() $$;

-- Integrations (patch v3) and where their webhooks land -----------------------------------------

CREATE TABLE public.integrations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL,
    provider         text NOT NULL,
    status           text NOT NULL DEFAULT 'active',
    config_encrypted text,
    webhook_secret   text,
    created_at       timestamptz DEFAULT now(),
    updated_at       timestamptz DEFAULT now()
);
CREATE INDEX idx_integrations_org ON public.integrations (org_id);

CREATE TABLE public.project_webhook_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    project_id  uuid NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
    provider    text NOT NULL,
    webhook_key text NOT NULL UNIQUE,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz DEFAULT now()
);

-- The legacy event table (patch v3); integration_freshness_view still reads it.
CREATE TABLE public.external_events (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL,
    provider          text NOT NULL,
    external_event_id text,
    event_type        text NOT NULL,
    payload_json      jsonb,
    status            text NOT NULL DEFAULT 'received',
    error_text        text,
    received_at       timestamptz DEFAULT now(),
    processed_at      timestamptz
);
CREATE INDEX idx_ext_events_org ON public.external_events (org_id);
CREATE INDEX idx_ext_events_provider_id ON public.external_events (provider, external_event_id);

-- The pipeline (saas_core; the data truth layer's CREATE TABLE IF NOT EXISTS is a no-op on a
-- replay, so these are the replay's column sets). No index on received_at or status upstream:
-- the worker and the checks scan.
CREATE TABLE public.external_events_raw (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    provider          text NOT NULL,
    external_event_id text NOT NULL,
    event_type        text NOT NULL,
    payload_json      jsonb NOT NULL,
    headers_json      jsonb,
    -- pending, processing, processed, failed, ignored, normalization_failed, archived
    status            text NOT NULL DEFAULT 'pending',
    error_text        text,
    received_at       timestamptz DEFAULT now(),
    processed_at      timestamptz,
    CONSTRAINT external_events_raw_org_id_provider_external_event_id_key
        UNIQUE (org_id, provider, external_event_id)
);

CREATE TABLE public.external_events_normalized (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    raw_event_id      uuid REFERENCES public.external_events_raw (id),
    provider          text NOT NULL,
    canonical_type    text NOT NULL,
    canonical_payload jsonb NOT NULL,
    normalized_at     timestamptz DEFAULT now(),
    -- antifragile core: one canonical event of each type per raw event.
    CONSTRAINT external_events_normalized_idempotency_key UNIQUE (raw_event_id, canonical_type)
);

-- The resilience queue: sync_provider, apply_event, consistency_run, copilot_run,
-- system_maintenance; queued -> running -> completed | failed -> dead.
CREATE TABLE public.jobs_queue (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid REFERENCES public.organizations (id) ON DELETE CASCADE,
    project_id   uuid REFERENCES public.projects (id) ON DELETE SET NULL,
    job_type     text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'queued',
    attempts     integer DEFAULT 0,
    max_attempts integer DEFAULT 3,
    last_error   text,
    trace_id     text,
    available_at timestamptz DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_jobs_queue_poll ON public.jobs_queue (status, available_at)
    WHERE status IN ('queued', 'running');
CREATE INDEX idx_jobs_queue_org ON public.jobs_queue (org_id);

CREATE FUNCTION public.update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
CREATE TRIGGER update_jobs_queue_modtime BEFORE UPDATE ON public.jobs_queue
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

-- Anomalies the consistency engine records (antifragile core plus the columns interlinked truth
-- v2 adds: severity info/warning/critical, status open/resolved).
CREATE TABLE public.state_anomalies (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    provider     text NOT NULL,
    entity_type  text NOT NULL,
    external_id  text NOT NULL,
    anomaly_type text NOT NULL,
    details      jsonb,
    detected_at  timestamptz DEFAULT now(),
    resolved_at  timestamptz,
    project_id   uuid REFERENCES public.projects (id) ON DELETE SET NULL,
    severity     text DEFAULT 'warning',
    status       text DEFAULT 'open'
);

-- The ops dashboard's views (ops metrics views; /ops/overview reads them) ------------------------

CREATE VIEW public.ops_queue_health_view AS
SELECT count(*) FILTER (WHERE status = 'queued') AS backlog_count,
       count(*) FILTER (WHERE status = 'dead') AS dead_letter_count,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued')), 0)
           AS oldest_age_seconds
FROM public.jobs_queue;

CREATE VIEW public.ops_job_success_view AS
WITH stats AS (
    SELECT job_type, count(*) AS total,
           count(*) FILTER (WHERE status = 'completed') AS success,
           count(*) FILTER (WHERE status = 'dead' OR (status = 'failed' AND attempts >= max_attempts))
               AS failed
    FROM public.jobs_queue
    WHERE created_at > now() - interval '24 hours'
    GROUP BY job_type
)
SELECT job_type, total, success, failed,
       CASE WHEN total = 0 THEN 100 ELSE round(success::numeric / total::numeric * 100, 2) END
           AS success_rate
FROM stats;

CREATE VIEW public.ops_anomalies_view AS
SELECT count(*) AS open_anomalies, count(*) FILTER (WHERE severity = 'critical') AS critical_anomalies
FROM public.state_anomalies
WHERE status = 'open';

-- Its final definition (ai copilot deterministic): per active integration, from the legacy table.
CREATE VIEW public.integration_freshness_view AS
SELECT i.org_id, i.provider,
       max(e.received_at) AS last_event_at,
       now() - max(e.received_at) AS time_since_last_event,
       extract(epoch FROM now() - max(e.received_at)) AS freshness_seconds,
       CASE WHEN max(e.received_at) IS NULL THEN 'stale'
            WHEN max(e.received_at) > now() - interval '24 hours' THEN 'healthy'
            WHEN max(e.received_at) > now() - interval '3 days' THEN 'degraded'
            ELSE 'stale' END AS status
FROM public.integrations i
LEFT JOIN public.external_events e ON i.org_id = e.org_id AND i.provider = e.provider
WHERE i.status = 'active'
GROUP BY i.org_id, i.provider;
