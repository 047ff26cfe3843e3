-- Privileges of the two roles (created by provision.py; roles are cluster-wide).
--   trendspark_service: what the backend, the worker and the traffic write with; stands in for
--                       the compose file's `trend` user, which owns everything upstream.
--   checks_ro:          what the checks read with: SELECT and nothing else.

REVOKE ALL ON DATABASE trendspark FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE trendspark TO trendspark_service;
GRANT CONNECT ON DATABASE trendspark TO checks_ro;

GRANT USAGE ON SCHEMA public TO trendspark_service;
GRANT ALL ON ALL TABLES IN SCHEMA public TO trendspark_service;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO trendspark_service;

GRANT USAGE ON SCHEMA public TO checks_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO checks_ro;
