DROP FUNCTION ccvec.unmetered_metrics(integer);
DROP FUNCTION ccvec.popularity_metrics_stale();
DROP FUNCTION ccvec.popularity_metrics();
DROP FUNCTION ccvec.set_popularity_metric(text, text, double precision);
