-- The idempotency key production needs on dunning_logs (the migration creates none): a step of
-- the cadence goes out once per payment and channel. A manual run (rule_id null) is not bound by
-- it. Re-runnable: heal of dunning_key_missing runs it again.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.dunning_logs'::regclass
                     AND conname = 'dunning_logs_idempotency_key') THEN
        ALTER TABLE public.dunning_logs ADD CONSTRAINT dunning_logs_idempotency_key
            UNIQUE (payment_id, rule_id, channel);
    END IF;
END
$$;
