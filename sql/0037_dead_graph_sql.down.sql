-- Back to 0016's recall helpers.

CREATE FUNCTION ccvec.knn_run_settings(p_run bigint) RETURNS TABLE (model text, k integer)
LANGUAGE sql STABLE AS $$
    SELECT model, k FROM ccvec.knn_run WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_run_settings(bigint) IS
    'The model and k of kNN run p_run (no row when there is no such run): what exact search must match to measure its recall.';

CREATE FUNCTION ccvec.knn_run_images(p_run bigint) RETURNS TABLE (identifier uuid)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT identifier FROM ccvec.knn_edge WHERE run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_run_images(bigint) IS
    'The images that have edges in kNN run p_run, once each, in no order: the population recall is sampled from.';
