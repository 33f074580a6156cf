-- Back to 0017's ccvec.load_errors (no rows for a run that does not exist) and its comment.

CREATE OR REPLACE FUNCTION ccvec.load_errors(p_run bigint)
RETURNS TABLE (run_id bigint, stage text, source text, reason text)
LANGUAGE sql STABLE AS $$
    SELECT e.run_id, e.stage, e.source, e.reason FROM ccvec.load_error e WHERE e.run_id = p_run ORDER BY e.id
$$;
COMMENT ON FUNCTION ccvec.load_errors(bigint) IS
    'The inputs load run p_run could not load, in the order they failed, with the stage and reason: `ccvec load-errors`.';
