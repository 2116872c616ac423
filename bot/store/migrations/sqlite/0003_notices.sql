-- Messages for a member the bot could not deliver in the channel or by DM: shown (ephemerally)
-- after their next command in that guild, then deleted.
CREATE TABLE notices (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    text       TEXT    NOT NULL,
    created_at REAL    NOT NULL
);
CREATE INDEX notices_by_user ON notices (guild_id, user_id);
