-- Row level security as upstream: members see their organisations' rows through
-- get_my_org_ids(). Only SELECT for `authenticated`: the app writes as revenueos_service
-- (BYPASSRLS). The checks read as checks_ro, which bypasses RLS.

ALTER TABLE public.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.project_webhook_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.external_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.external_events_raw ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.external_events_normalized ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.jobs_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.state_anomalies ENABLE ROW LEVEL SECURITY;

CREATE POLICY memberships_see_self ON public.memberships
    FOR SELECT TO authenticated USING (user_id = (SELECT auth.uid()));
CREATE POLICY "Organizations_Select" ON public.organizations
    FOR SELECT TO authenticated USING (id IN (SELECT public.get_my_org_ids()));
CREATE POLICY projects_select_policy ON public.projects
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.get_my_org_ids()));
CREATE POLICY "Users can view integrations" ON public.integrations
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.get_my_org_ids()));
CREATE POLICY "Users can view raw events for their org" ON public.external_events_raw
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.get_my_org_ids()));
CREATE POLICY "Users can view normalized events for their org" ON public.external_events_normalized
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.get_my_org_ids()));
CREATE POLICY "Org members can view own jobs" ON public.jobs_queue
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.get_my_org_ids()));
CREATE POLICY "Org admins view anomalies" ON public.state_anomalies
    FOR SELECT TO authenticated USING (org_id IN (SELECT public.get_my_org_ids()));
-- project_webhook_keys and external_events: RLS on, no policy for users (service role only).
