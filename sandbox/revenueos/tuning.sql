-- Autovacuum on the two event tables, as a queue-like table needs it: the worker updates every
-- raw row twice (processing, processed), so at PostgreSQL's default scale factor (0.2) the
-- dead-tuple ratio would climb to the runbook's 0.2 limit before each autovacuum. A lower
-- factor keeps a healthy table well under it. Re-runnable: the maintenance faults' heals run it
-- again (they switch autovacuum off).
ALTER TABLE public.external_events_raw SET (autovacuum_enabled = true,
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE public.external_events_normalized SET (autovacuum_enabled = true,
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
