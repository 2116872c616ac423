-- A public bot: the servers the operator approved (``python -m bot servers approve``); each
-- server's own RunComfy key, encrypted with BOT_SECRET_KEY, and the one each job was sent with;
-- and what the operator's account spent by day, for the account caps (jobs on a server's own
-- key, and simulated ones, are not the operator's).
CREATE TABLE approved_servers (
    guild_id    BIGINT PRIMARY KEY,
    approved_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE guild_keys (
    guild_id   BIGINT PRIMARY KEY,
    sealed     TEXT   NOT NULL,  -- Fernet token: never the key in plain text
    ending     TEXT   NOT NULL,  -- what may be shown of it, "…abcd"
    set_at     DOUBLE PRECISION NOT NULL,
    refused_at DOUBLE PRECISION  -- when RunComfy refused it (the server was told)
);
ALTER TABLE jobs ADD COLUMN runcomfy_key TEXT;  -- the server's key it was sent with (sealed)

CREATE TABLE account_daily (
    day      TEXT PRIMARY KEY,  -- UTC date of the request, YYYY-MM-DD
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0
);
INSERT INTO account_daily (day, cost_usd)
    SELECT day, SUM(cost_usd) FROM usage_daily WHERE simulated = 0 GROUP BY day;
