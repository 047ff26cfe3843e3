-- TrendSpark's tables as SQLAlchemy's Base.metadata.create_all renders trend_spark_ai/models.py
-- for PostgreSQL (IronSyd/TrendSpark at 3e22534): naive `timestamp without time zone` columns
-- holding UTC (the models default to datetime.utcnow in Python), no server defaults, serial
-- keys, one index per `index=True` column, named ix_<table>_<column>. No migrations exist.

CREATE TABLE public.users (
    id SERIAL NOT NULL,
    username VARCHAR(64) NOT NULL,
    token_hash VARCHAR(128) NOT NULL,
    is_active BOOLEAN NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (username),
    UNIQUE (token_hash)
);

CREATE TABLE public.roles (
    id SERIAL NOT NULL,
    name VARCHAR(32) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (name)
);

CREATE TABLE public.user_roles (
    user_id INTEGER NOT NULL,
    role_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, role_id),
    FOREIGN KEY(user_id) REFERENCES public.users (id),
    FOREIGN KEY(role_id) REFERENCES public.roles (id)
);

CREATE TABLE public.growth_config (
    id SERIAL NOT NULL,
    name VARCHAR(128) NOT NULL,
    is_default BOOLEAN NOT NULL,
    is_active BOOLEAN NOT NULL,
    keywords JSON,
    niche VARCHAR(256),
    watchlist JSON,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (name)
);

CREATE TABLE public.brand_profile (
    id SERIAL NOT NULL,
    growth_profile_id INTEGER,
    voice TEXT,
    topics JSON,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(growth_profile_id) REFERENCES public.growth_config (id)
);

CREATE TABLE public.ingestion_state (
    id SERIAL NOT NULL,
    source VARCHAR(32) NOT NULL,
    cursor VARCHAR(256),
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (source)
);

CREATE TABLE public.posts (
    id SERIAL NOT NULL,
    platform VARCHAR(16) NOT NULL,
    post_id VARCHAR(64) NOT NULL,
    author VARCHAR(128),
    url VARCHAR(512),
    text TEXT,
    created_at TIMESTAMP WITHOUT TIME ZONE,
    collected_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    likes INTEGER NOT NULL,
    reposts INTEGER NOT NULL,
    replies INTEGER NOT NULL,
    views INTEGER,
    virality_score FLOAT,
    velocity_score FLOAT,
    trending BOOLEAN NOT NULL,
    trending_since TIMESTAMP WITHOUT TIME ZONE,
    alerted BOOLEAN NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_posts_platform_post_id UNIQUE (platform, post_id)
);
CREATE INDEX ix_posts_collected_at ON public.posts (collected_at);
CREATE INDEX ix_posts_trending ON public.posts (trending);

CREATE TABLE public.ideas (
    id SERIAL NOT NULL,
    post_id INTEGER,
    kind VARCHAR(32) NOT NULL,
    content TEXT NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(post_id) REFERENCES public.posts (id)
);
CREATE INDEX ix_ideas_created_at ON public.ideas (created_at);

CREATE TABLE public.ingest_audit (
    id SERIAL NOT NULL,
    cycle_id VARCHAR(32) NOT NULL,
    source VARCHAR(16) NOT NULL,
    platform VARCHAR(16) NOT NULL,
    post_id VARCHAR(64) NOT NULL,
    author VARCHAR(128),
    fetched_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    item_created_at TIMESTAMP WITHOUT TIME ZONE,
    summary TEXT,
    PRIMARY KEY (id)
);
CREATE INDEX ix_ingest_audit_cycle_id ON public.ingest_audit (cycle_id);
CREATE INDEX ix_ingest_audit_source ON public.ingest_audit (source);
CREATE INDEX ix_ingest_audit_fetched_at ON public.ingest_audit (fetched_at);

CREATE TABLE public.notifications (
    id SERIAL NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    channel VARCHAR(32) NOT NULL,
    category VARCHAR(32) NOT NULL,
    message TEXT NOT NULL,
    payload JSON,
    PRIMARY KEY (id)
);
CREATE INDEX ix_notifications_created_at ON public.notifications (created_at);
CREATE INDEX ix_notifications_category ON public.notifications (category);

CREATE TABLE public.stream_rules (
    id SERIAL NOT NULL,
    value VARCHAR(512) NOT NULL,
    tag VARCHAR(64),
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (value)
);

CREATE TABLE public.scheduler_configs (
    id SERIAL NOT NULL,
    job_id VARCHAR(64) NOT NULL,
    growth_profile_id INTEGER,
    name VARCHAR(128) NOT NULL,
    cron VARCHAR(64) NOT NULL,
    enabled BOOLEAN NOT NULL,
    priority INTEGER NOT NULL,
    concurrency_limit INTEGER NOT NULL,
    lock_timeout_seconds INTEGER NOT NULL,
    parameters JSON,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_scheduler_configs_job_name UNIQUE (job_id, name),
    FOREIGN KEY(growth_profile_id) REFERENCES public.growth_config (id)
);
CREATE INDEX ix_scheduler_configs_job_id ON public.scheduler_configs (job_id);

CREATE TABLE public.scheduler_locks (
    id SERIAL NOT NULL,
    config_id INTEGER NOT NULL,
    lock_token VARCHAR(64) NOT NULL,
    acquired_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (lock_token),
    FOREIGN KEY(config_id) REFERENCES public.scheduler_configs (id)
);
CREATE INDEX ix_scheduler_locks_config_id ON public.scheduler_locks (config_id);

CREATE TABLE public.job_runs (
    id SERIAL NOT NULL,
    job_id VARCHAR(64) NOT NULL,
    config_id INTEGER,
    status VARCHAR(16) NOT NULL,
    run_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    duration_ms FLOAT,
    detail TEXT,
    correlation_id VARCHAR(64),
    PRIMARY KEY (id),
    FOREIGN KEY(config_id) REFERENCES public.scheduler_configs (id)
);
CREATE INDEX ix_job_runs_job_id ON public.job_runs (job_id);
CREATE INDEX ix_job_runs_config_id ON public.job_runs (config_id);
CREATE INDEX ix_job_runs_run_at ON public.job_runs (run_at);
