-- The dunning engine's tables as its migration (20260407000000_dunning_engine) intends them.
-- Upstream the migration's policies join organization_members, a table that does not exist, so
-- on a replay the whole migration fails and none of these tables exists (the fault
-- dunning_table_missing shows that state). Here the policies join the real membership table.
-- The idempotency key production needs is in dunning_key.sql.

CREATE TABLE public.dunning_templates (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid NOT NULL REFERENCES public.projects (id),
    type         text NOT NULL CHECK (type IN ('email', 'whatsapp', 'sms')),
    name         text NOT NULL,
    subject      text,
    body_content text NOT NULL,
    is_default   boolean DEFAULT false,
    created_at   timestamptz DEFAULT now()
);

-- The "régua de cobrança": which template goes out how many days after the due date.
CREATE TABLE public.dunning_rules (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id     uuid NOT NULL REFERENCES public.projects (id),
    days_after_due integer NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('email', 'whatsapp', 'sms')),
    template_id    uuid NOT NULL REFERENCES public.dunning_templates (id),
    active         boolean DEFAULT true,
    created_at     timestamptz DEFAULT now(),
    CONSTRAINT dunning_rules_unique_trigger UNIQUE (project_id, days_after_due, channel)
);

-- One row per message sent; rule_id is null for a manual run. status: sent, failed, delivered,
-- read.
CREATE TABLE public.dunning_logs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id          uuid NOT NULL REFERENCES public.projects (id),
    rule_id             uuid,
    payment_id          uuid,
    customer_id         text,
    channel             text NOT NULL,
    status              text NOT NULL DEFAULT 'sent',
    provider_message_id text,
    sent_at             timestamptz DEFAULT now()
);

ALTER TABLE public.dunning_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dunning_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dunning_logs ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Project members can manage dunning" ON public.dunning_rules
    FOR ALL TO authenticated
    USING (EXISTS (SELECT 1 FROM public.projects p JOIN public.memberships m ON m.org_id = p.org_id
                   WHERE p.id = dunning_rules.project_id AND m.user_id = (SELECT auth.uid())));

CREATE POLICY "Project members can manage templates" ON public.dunning_templates
    FOR ALL TO authenticated
    USING (EXISTS (SELECT 1 FROM public.projects p JOIN public.memberships m ON m.org_id = p.org_id
                   WHERE p.id = dunning_templates.project_id AND m.user_id = (SELECT auth.uid())));

CREATE POLICY "Project members can view logs" ON public.dunning_logs
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.projects p JOIN public.memberships m ON m.org_id = p.org_id
                   WHERE p.id = dunning_logs.project_id AND m.user_id = (SELECT auth.uid())));
