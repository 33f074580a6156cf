-- The recall helpers no caller uses since the graph build measures recall on its own sample
-- (migration 0036): ccvec.knn_run_settings (model and k of a run, for an exact search in Python)
-- and ccvec.knn_run_images (the population graph.measure_recall sampled from).

DROP FUNCTION ccvec.knn_run_images(bigint);
DROP FUNCTION ccvec.knn_run_settings(bigint);
