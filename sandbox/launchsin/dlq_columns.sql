-- The dead-letter columns the webhook code, the DLQ worker and runbook 001 use, which no
-- migration creates: production has them, added out of band. Re-runnable (heal of
-- dlq_schema_drift runs it again).
ALTER TABLE public.dlq_events
    ADD COLUMN IF NOT EXISTS error_class        text,
    ADD COLUMN IF NOT EXISTS attempt_count      integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS next_retry_at      timestamptz,
    ADD COLUMN IF NOT EXISTS last_error_message text,
    ADD COLUMN IF NOT EXISTS resolved_reason    text,
    ADD COLUMN IF NOT EXISTS dead_after         timestamptz;
