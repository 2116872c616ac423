-- Jobs: one row per video asked for, from acceptance to delivery.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY,
    guild_id          INTEGER NOT NULL,
    channel_id        INTEGER NOT NULL,
    user_id           INTEGER NOT NULL,
    model_id          TEXT    NOT NULL,
    command           TEXT    NOT NULL,
    prompt            TEXT    NOT NULL DEFAULT '',
    body              TEXT    NOT NULL,            -- the JSON sent to RunComfy
    state             TEXT    NOT NULL,
    request_id        TEXT    UNIQUE,
    queue_position    INTEGER,
    card_message_id   INTEGER,
    result_message_id INTEGER,
    delivered_as      TEXT,                        -- 'file' or 'link'
    video_url         TEXT,
    error             TEXT,
    estimated_usd     REAL,
    cost_usd          REAL,
    created_at        REAL    NOT NULL,            -- unix seconds
    submitted_at      REAL,
    started_at        REAL,
    finished_at       REAL,
    updated_at        REAL    NOT NULL
);

CREATE INDEX jobs_open ON jobs (guild_id, state)
    WHERE state IN ('accepted', 'submitting', 'queued', 'running', 'fetched', 'delivering');
CREATE INDEX jobs_by_user ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at);

-- Small facts the bot keeps between runs (e.g. the hash of the synced command set).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
