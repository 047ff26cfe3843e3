-- Supabase's auth schema, reduced to what the systems' policies need; applied to each system's
-- database before its own schema. auth.uid() reads the JWT subject the way Supabase does: from
-- the claims PostgREST puts in request.jwt.claims, or the older per-claim setting. Without
-- claims it is null and policies based on it match no row.
CREATE SCHEMA auth;

CREATE TABLE auth.users (
    id         uuid PRIMARY KEY,
    email      text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
        nullif(current_setting('request.jwt.claim.sub', true), '')
    )::uuid
$$;
