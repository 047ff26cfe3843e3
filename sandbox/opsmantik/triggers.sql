-- The partition drift guards (RUNBOOK-ITEMS.md 1.3). Safe to run again: re-applying this file is
-- runbook 002's mitigation, and the sandbox's heal for the trigger faults. CREATE OR REPLACE
-- TRIGGER also re-enables a disabled trigger.
--
-- PostgreSQL routes a row to its partition before a parent's BEFORE ROW trigger fires, so these
-- can only normalise a key within its partition; a month that routes elsewhere makes the INSERT
-- fail ("moving row to another partition ..."), it is not silently rewritten.

CREATE OR REPLACE FUNCTION public.trg_sessions_set_created_month() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    IF NEW.created_at IS NULL THEN
        NEW.created_at := now();
    END IF;
    NEW.created_month := date_trunc('month', NEW.created_at AT TIME ZONE 'utc')::date;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION public.trg_events_set_session_month_from_session() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    found_month date;
    found_site uuid;
BEGIN
    SELECT s.created_month, s.site_id INTO found_month, found_site
    FROM public.sessions s
    WHERE s.id = NEW.session_id
    LIMIT 1;

    IF FOUND THEN
        NEW.session_month := found_month;
        IF NEW.site_id IS NULL THEN
            NEW.site_id := found_site;
        END IF;
    ELSIF NEW.session_month IS NULL THEN
        RAISE EXCEPTION 'session % not found and no session_month supplied', NEW.session_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER sessions_set_created_month
    BEFORE INSERT OR UPDATE OF created_at, created_month ON public.sessions
    FOR EACH ROW EXECUTE FUNCTION public.trg_sessions_set_created_month();

CREATE OR REPLACE TRIGGER events_set_session_month_from_session
    BEFORE INSERT OR UPDATE OF session_id, session_month, site_id ON public.events
    FOR EACH ROW EXECUTE FUNCTION public.trg_events_set_session_month_from_session();
