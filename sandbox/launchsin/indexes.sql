-- canonical_events' unique key and indexes (migration 0004). Built after the bulk load of a
-- fresh database, as pg_restore does, and re-runnable: heal of duplicate_guard_dropped and
-- project_index_dropped runs it again.

-- The idempotency guard: a repeated delivery fails with 23505, which the ingest code counts as
-- a duplicate.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.canonical_events'::regclass
                     AND conname = 'unique_event_per_source') THEN
        ALTER TABLE public.canonical_events ADD CONSTRAINT unique_event_per_source
            UNIQUE (source_connection_id, idempotency_key);
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS idx_canonical_events_project_time
    ON public.canonical_events (project_id, event_time DESC);
CREATE INDEX IF NOT EXISTS idx_canonical_events_connection_time
    ON public.canonical_events (source_connection_id, event_time DESC);
CREATE INDEX IF NOT EXISTS idx_canonical_events_type_time
    ON public.canonical_events (event_type, event_time DESC);
CREATE INDEX IF NOT EXISTS idx_canonical_events_org_time
    ON public.canonical_events (org_id, event_time DESC);
