-- Neighbourhood popularity summed in double precision. Its sums were of real (float4) values, so
-- their last bits depended on the order the join delivered the neighbours in, and that order follows
-- the tables' physical order and the plan: a refresh after `ccvec refresh --cold` rewrote the cached
-- inputs could differ from an incremental one by 1e-7 (seen once in tests/test_incremental.py,
-- which compares them exactly). Summed in float8 and then rounded to real, the order no longer shows.
--
-- image_score and cluster_mate read the view, so they are given their own queries again (taken from
-- the catalog before the swap) to read the new one.

DO $migration$
DECLARE
    v_score text := rtrim(pg_get_viewdef('ccvec.image_score'::regclass), E'; \n');
    v_mate text := rtrim(pg_get_viewdef('ccvec.cluster_mate'::regclass), E'; \n');
BEGIN
    PERFORM ccvec.matview_replace('neighbourhood_popularity', $view$
SELECT e.identifier,
       (sum(e.similarity::float8 * c.popularity) / sum(e.similarity::float8))::real AS estimate,
       count(*)::integer AS support
FROM ccvec.knn_current e
JOIN ccvec.popularity_source c ON c.identifier = e.neighbour
GROUP BY e.identifier
HAVING count(*) >= (SELECT ccvec.setting('neighbourhood_popularity.min_support'))
   AND sum(e.similarity::float8) > 0
$view$);
    PERFORM ccvec.matview_replace('image_score', v_score);
    PERFORM ccvec.matview_replace('cluster_mate', v_mate);
END $migration$;

DROP MATERIALIZED VIEW ccvec.cluster_mate_retired, ccvec.image_score_retired,
    ccvec.neighbourhood_popularity_retired;
