-- Privileges of the two login roles (created with their passwords by provision.py).
--   opsmantik_service: what the app and the worker write with; stands in for Supabase's
--                      service_role (BYPASSRLS, everything).
--   checks_ro:         what the checks read with: SELECT, three read-only RPCs, nothing else.

REVOKE ALL ON DATABASE opsmantik FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE opsmantik TO opsmantik_service;
GRANT CONNECT ON DATABASE opsmantik TO checks_ro;

GRANT USAGE ON SCHEMA public, auth TO opsmantik_service;
GRANT ALL ON ALL TABLES IN SCHEMA public, auth TO opsmantik_service;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO opsmantik_service;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public, auth TO opsmantik_service;

GRANT USAGE ON SCHEMA public TO checks_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO checks_ro;

-- Partitions made later (by the daemon, or by create_next_month_partitions, both as postgres)
-- get the same grants as the parents.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO checks_ro;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO opsmantik_service;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO opsmantik_service;

-- The functions that write or change the schema are service-only, as upstream.
REVOKE EXECUTE ON FUNCTION public.watchtower_partition_drift_check_v1() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.create_next_month_partitions() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.rotate_site_secret_v1(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION public.verify_partition_triggers_exist() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION public.ping(), public.verify_partition_triggers_exist() TO checks_ro;
-- verify_current_events_partition_exists(): granted in verify_events.sql.
