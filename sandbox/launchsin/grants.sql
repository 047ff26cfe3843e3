-- Privileges of the three roles (created by provision.py; roles are cluster-wide).
--   launchsin_service: what the app, the traffic and the DLQ worker write with; stands in for
--                      Supabase's service_role (BYPASSRLS, everything).
--   authenticated:     Supabase's role for signed-in users (NOLOGIN): SELECT, filtered by RLS.
--   checks_ro:         what the checks read with: SELECT, the two read-only RPCs, and SET ROLE
--                      authenticated (granted in provision.py) to look as a user. Nothing else.

REVOKE ALL ON DATABASE launchsin FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE launchsin TO launchsin_service;
GRANT CONNECT ON DATABASE launchsin TO checks_ro;

GRANT USAGE ON SCHEMA public, auth TO launchsin_service;
GRANT ALL ON ALL TABLES IN SCHEMA public, auth TO launchsin_service;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public, auth TO launchsin_service;

GRANT USAGE ON SCHEMA public, auth TO authenticated;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO authenticated;

GRANT USAGE ON SCHEMA public TO checks_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO checks_ro;

REVOKE EXECUTE ON FUNCTION public.get_project_event_stats(uuid),
                           public.get_connection_event_lag(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.get_project_event_stats(uuid),
                          public.get_connection_event_lag(uuid)
    TO checks_ro, launchsin_service;
