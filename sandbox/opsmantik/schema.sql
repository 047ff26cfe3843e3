-- OpsMantik's database in the shape production had in the runbook era (commit fe0d0a15):
-- the tables, partitioning, functions and RLS the runbooks 000 and 002 rely on.
-- Written for the sandbox from RUNBOOK-ITEMS.md section 1, not taken from upstream migrations.
-- Monthly partitions are created by the sandbox (partitions.py), the drift-guard triggers by
-- triggers.sql, and privileges by grants.sql.

-- The auth schema (auth.users, auth.uid()) comes from sandbox/supabase_auth.sql.

-- Tenancy ------------------------------------------------------------------------------------

CREATE TABLE public.sites (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    public_id  text NOT NULL UNIQUE,
    domain     text,
    name       text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.site_members (
    site_id    uuid NOT NULL REFERENCES public.sites (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role       text NOT NULL DEFAULT 'viewer',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, user_id)
);

ALTER TABLE public.sites ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.site_members ENABLE ROW LEVEL SECURITY;

-- The two policies look at each other's table, as upstream's do: a role without BYPASSRLS gets
-- "infinite recursion detected in policy" (RUNBOOK-ITEMS.md 1.8), which is why checks_ro bypasses.
CREATE POLICY sites_owner_or_member ON public.sites FOR SELECT
    USING (user_id = auth.uid()
           OR EXISTS (SELECT 1 FROM public.site_members m
                      WHERE m.site_id = sites.id AND m.user_id = auth.uid()));

CREATE POLICY sites_owner_writes ON public.sites FOR ALL
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

CREATE POLICY site_members_visible_to_team ON public.site_members FOR SELECT
    USING (user_id = auth.uid()
           OR EXISTS (SELECT 1 FROM public.sites s
                      WHERE s.id = site_members.site_id AND s.user_id = auth.uid()));

-- Sessions: range-partitioned by the UTC month of created_at -------------------------------

CREATE TABLE public.sessions (
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    site_id            uuid NOT NULL REFERENCES public.sites (id) ON DELETE CASCADE,
    created_month      date NOT NULL,
    created_at         timestamptz DEFAULT now(),
    ip_address         inet,
    entry_page         text,
    exit_page          text,
    gclid              text,
    wbraid             text,
    gbraid             text,
    total_duration_sec integer DEFAULT 0,
    event_count        integer DEFAULT 0,
    attribution_source text,
    device_type        text,
    device_os          text,
    browser            text,
    city               text,
    district           text,
    fingerprint        text,
    lead_score         integer DEFAULT 0,
    utm_source         text,
    utm_medium         text,
    utm_campaign       text,
    utm_term           text,
    utm_content        text,
    traffic_source     text,
    traffic_medium     text,
    PRIMARY KEY (id, created_month)
) PARTITION BY RANGE (created_month);

CREATE INDEX idx_sessions_site_id ON public.sessions (site_id);
CREATE INDEX idx_sessions_created_month ON public.sessions (created_month);
CREATE INDEX idx_sessions_site_month_date ON public.sessions (site_id, created_month, created_at);
CREATE INDEX idx_sessions_site_id_created_at ON public.sessions (site_id, created_at);
-- Not upstream: lets the checks' month-pruned "last N minutes" counts use an index.
CREATE INDEX idx_sessions_created_month_created_at ON public.sessions (created_month, created_at);

ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;

CREATE POLICY sessions_select_site_team ON public.sessions FOR SELECT
    USING (EXISTS (SELECT 1 FROM public.sites s
                   WHERE s.id = sessions.site_id
                     AND (s.user_id = auth.uid()
                          OR EXISTS (SELECT 1 FROM public.site_members m
                                     WHERE m.site_id = s.id AND m.user_id = auth.uid()))));

CREATE POLICY sessions_tenant_isolation_iron_dome ON public.sessions AS RESTRICTIVE FOR ALL
    USING (EXISTS (SELECT 1 FROM public.sites s
                   WHERE s.id = sessions.site_id
                     AND (s.user_id = auth.uid()
                          OR EXISTS (SELECT 1 FROM public.site_members m
                                     WHERE m.site_id = s.id AND m.user_id = auth.uid()))));

-- Events: range-partitioned by the month of their session --------------------------------

CREATE TABLE public.events (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    session_id      uuid NOT NULL,
    session_month   date NOT NULL,
    url             text NOT NULL,
    event_category  text,
    event_action    text NOT NULL,
    event_label     text,
    event_value     numeric,
    metadata        jsonb DEFAULT '{}'::jsonb,
    created_at      timestamptz DEFAULT now(),
    site_id         uuid REFERENCES public.sites (id) ON DELETE CASCADE,
    ingest_dedup_id uuid,
    PRIMARY KEY (id, session_month),
    FOREIGN KEY (session_id, session_month)
        REFERENCES public.sessions (id, created_month) ON DELETE CASCADE
) PARTITION BY RANGE (session_month);

-- Idempotent ingest: unique per partition, so the partition key has to be part of it.
CREATE UNIQUE INDEX idx_events_ingest_dedup_id ON public.events (session_month, ingest_dedup_id)
    WHERE ingest_dedup_id IS NOT NULL;
CREATE INDEX idx_events_session_id ON public.events (session_id);
CREATE INDEX idx_events_session_month ON public.events (session_month);
CREATE INDEX idx_events_created_at ON public.events (created_at);
CREATE INDEX idx_events_site_id ON public.events (site_id);
CREATE INDEX idx_events_session_month_date ON public.events (session_id, session_month, created_at);

ALTER TABLE public.events ENABLE ROW LEVEL SECURITY;

CREATE POLICY events_select_site_team ON public.events FOR SELECT
    USING (EXISTS (SELECT 1 FROM public.sessions s
                   WHERE s.id = events.session_id AND s.created_month = events.session_month));

-- Worker ledger, dead letters and the watchtower log: service role only (RLS, no policy) -----

CREATE TABLE public.processed_signals (
    event_id    uuid PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    site_id     uuid NOT NULL,
    status      text NOT NULL DEFAULT 'processed'
);
CREATE INDEX idx_processed_signals_received_at ON public.processed_signals (received_at);

CREATE TABLE public.sync_dlq (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    received_at       timestamptz NOT NULL DEFAULT now(),
    site_id           uuid,
    qstash_message_id text,
    dedup_event_id    uuid,
    stage             text,
    error             text,
    payload           jsonb NOT NULL,
    replay_count      integer NOT NULL DEFAULT 0,
    last_replay_at    timestamptz,
    last_replay_error text
);
CREATE INDEX idx_sync_dlq_received_at ON public.sync_dlq (received_at);

CREATE TABLE public.watchtower_checks (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    check_name text NOT NULL,
    ok         boolean NOT NULL,
    details    jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_watchtower_checks_created_at ON public.watchtower_checks (created_at);

ALTER TABLE public.processed_signals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sync_dlq ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.watchtower_checks ENABLE ROW LEVEL SECURITY;

-- Functions the runbooks and the CI verify script call ------------------------------------

CREATE FUNCTION public.ping() RETURNS integer
LANGUAGE sql STABLE
AS $$ SELECT 1 $$;

-- Presence only, like upstream: a disabled trigger still counts, tgenabled is not read.
CREATE FUNCTION public.verify_partition_triggers_exist() RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_catalog
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_trigger t
                   WHERE t.tgrelid = 'public.sessions'::regclass
                     AND t.tgname = 'sessions_set_created_month' AND NOT t.tgisinternal)
       AND EXISTS (SELECT 1 FROM pg_trigger t
                   WHERE t.tgrelid = 'public.events'::regclass
                     AND t.tgname = 'events_set_session_month_from_session' AND NOT t.tgisinternal)
$$;

-- Not read-only: every call logs a row, which is why the checks run it only on request.
CREATE FUNCTION public.watchtower_partition_drift_check_v1() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_catalog
AS $$
DECLARE
    triggers_ok boolean := public.verify_partition_triggers_exist();
    partition_ok boolean := public.verify_current_events_partition_exists();
    result jsonb;
BEGIN
    result := jsonb_build_object(
        'ok', triggers_ok AND partition_ok,
        'triggers_ok', triggers_ok,
        'events_partition_ok', partition_ok,
        'checked_at', now());
    INSERT INTO public.watchtower_checks (check_name, ok, details)
    VALUES ('partition_drift', triggers_ok AND partition_ok, result);
    RETURN result;
END
$$;

-- What pg_cron's maintain-partitions job runs upstream: next month's pair, when missing.
CREATE FUNCTION public.create_next_month_partitions() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_catalog
AS $$
DECLARE
    first_day date := (date_trunc('month', now() AT TIME ZONE 'utc') + interval '1 month')::date;
    after_day date := (first_day + interval '1 month')::date;
    suffix text := to_char(first_day, 'YYYY_MM');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.tables
                   WHERE table_schema = 'public' AND table_name = 'sessions_' || suffix) THEN
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.sessions FOR VALUES FROM (%L) TO (%L)',
                       'sessions_' || suffix, first_day, after_day);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM information_schema.tables
                   WHERE table_schema = 'public' AND table_name = 'events_' || suffix) THEN
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.events FOR VALUES FROM (%L) TO (%L)',
                       'events_' || suffix, first_day, after_day);
    END IF;
END
$$;

-- The rest of the CI verify list. The checks only look these up in pg_proc; the bodies are
-- small stand-ins with plausible signatures.

CREATE FUNCTION public.is_ads_session(p_gclid text, p_wbraid text, p_gbraid text, p_utm_medium text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
    SELECT coalesce(p_gclid, p_wbraid, p_gbraid) IS NOT NULL
        OR lower(coalesce(p_utm_medium, '')) IN ('cpc', 'ppc', 'paid')
$$;

CREATE FUNCTION public.get_recent_intents_v1(p_site_id uuid, p_since timestamptz DEFAULT now() - interval '24 hours', p_limit integer DEFAULT 50)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_catalog
AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(recent) ORDER BY recent.created_at DESC), '[]'::jsonb)
    FROM (SELECT s.id, s.created_at, s.gclid, s.entry_page, s.lead_score
          FROM public.sessions s
          WHERE s.site_id = p_site_id AND s.created_at >= p_since
            AND s.created_month >= date_trunc('month', p_since AT TIME ZONE 'utc')::date
            AND public.is_ads_session(s.gclid, s.wbraid, s.gbraid, s.utm_medium)
          ORDER BY s.created_at DESC
          LIMIT p_limit) AS recent
$$;

CREATE FUNCTION public.get_session_details(p_site_id uuid, p_session_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_catalog
AS $$
    SELECT to_jsonb(s) FROM public.sessions s WHERE s.site_id = p_site_id AND s.id = p_session_id LIMIT 1
$$;

CREATE FUNCTION public.get_session_timeline(p_site_id uuid, p_session_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_catalog
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('at', e.created_at, 'category', e.event_category,
                                                 'action', e.event_action, 'url', e.url)
                              ORDER BY e.created_at), '[]'::jsonb)
    FROM public.events e
    WHERE e.site_id = p_site_id AND e.session_id = p_session_id
$$;

-- Site signing secrets are not modelled in the sandbox: nothing can verify, nothing rotates.
CREATE FUNCTION public.verify_call_event_signature_v1(p_site_public_id text, p_ts bigint, p_raw_body text, p_signature text)
RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT false $$;

CREATE FUNCTION public.rotate_site_secret_v1(p_site_public_id text, p_current_secret text, p_next_secret text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION 'rotate_site_secret_v1: site secrets are not modelled in this database';
END
$$;
