DROP FUNCTION ccvec.refresh_concurrently(text);
DELETE FROM ccvec.setting WHERE name = 'refresh.concurrently';
