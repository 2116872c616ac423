-- A card is recorded as being sent before it is sent, so that after a crash the bot looks
-- for it instead of posting a second one.
ALTER TABLE jobs ADD COLUMN card_sending_at DOUBLE PRECISION;
