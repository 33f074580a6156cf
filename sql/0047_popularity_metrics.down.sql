DROP FUNCTION ccvec.unmetered_metrics(bigint);
DROP FUNCTION ccvec.popularity_metrics();
DROP FUNCTION ccvec.set_popularity_metric(text, text, double precision);
