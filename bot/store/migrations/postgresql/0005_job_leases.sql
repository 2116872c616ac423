-- Which process serves a job (polls it, posts its card and video), until when: several bot
-- processes on one database never serve a job twice, also while the shards are changed.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;
