-- Row level security on every table, with policies that work. Upstream's org_members policy
-- looks itself up and any authenticated query touching it fails with "infinite recursion
-- detected"; here a user sees their own memberships, and everything else is reached through
-- them. Only SELECT for `authenticated`: the app writes as launchsin_service (BYPASSRLS).
-- Re-runnable: heal of rls_member_denied runs it again.

ALTER TABLE public.orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.org_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.project_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.source_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.canonical_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dlq_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sync_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.integration_alerts ENABLE ROW LEVEL SECURITY;

-- (SELECT auth.uid()) rather than auth.uid(): evaluated once per query, not once per row.

DROP POLICY IF EXISTS org_members_select_own ON public.org_members;
CREATE POLICY org_members_select_own ON public.org_members
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));

DROP POLICY IF EXISTS orgs_select_member ON public.orgs;
CREATE POLICY orgs_select_member ON public.orgs
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.org_members m
                   WHERE m.org_id = orgs.id AND m.user_id = (SELECT auth.uid())));

DROP POLICY IF EXISTS projects_select_member ON public.projects;
CREATE POLICY projects_select_member ON public.projects
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.org_members m
                   WHERE m.org_id = projects.org_id AND m.user_id = (SELECT auth.uid())));

DROP POLICY IF EXISTS project_members_select_own ON public.project_members;
CREATE POLICY project_members_select_own ON public.project_members
    FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));

DROP POLICY IF EXISTS source_connections_select_member ON public.source_connections;
CREATE POLICY source_connections_select_member ON public.source_connections
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.org_members m
                   WHERE m.org_id = source_connections.org_id
                     AND m.user_id = (SELECT auth.uid())));

DROP POLICY IF EXISTS canonical_events_select_member ON public.canonical_events;
CREATE POLICY canonical_events_select_member ON public.canonical_events
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.org_members m
                   WHERE m.org_id = canonical_events.org_id
                     AND m.user_id = (SELECT auth.uid())));

DROP POLICY IF EXISTS dlq_events_select_member ON public.dlq_events;
CREATE POLICY dlq_events_select_member ON public.dlq_events
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.source_connections c
                   JOIN public.org_members m ON m.org_id = c.org_id
                   WHERE c.id = dlq_events.connection_id AND m.user_id = (SELECT auth.uid())));

-- sync_runs and integration_alerts: RLS on, no policy for users (service role only).
