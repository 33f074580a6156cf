-- `ccvec run` skipped the score refresh when nothing upstream changed in that run and the scores
-- had been computed once: a run interrupted during its refresh (or images loaded, grouped, graphed
-- and clustered by the separate commands) left the new images without scores, and every later run
-- said "scores: up to date". ccvec.unscored_images counts the loaded images the scores miss.

CREATE FUNCTION ccvec.unscored_images() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.catalog c WHERE NOT EXISTS
    (SELECT 1 FROM ccvec.image_score s WHERE s.identifier = c.identifier)
$$;
COMMENT ON FUNCTION ccvec.unscored_images() IS
    'Number of loaded images without a row in ccvec.image_score (call once the view is populated): `ccvec run` refreshes the scores when it is not 0, even when nothing changed in that run.';
