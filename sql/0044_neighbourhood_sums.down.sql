-- Back to 0038's neighbourhood_popularity (sums of real values); image_score and cluster_mate
-- re-created on it as in the up migration.

DO $migration$
DECLARE
    v_score text := rtrim(pg_get_viewdef('ccvec.image_score'::regclass), E'; \n');
    v_mate text := rtrim(pg_get_viewdef('ccvec.cluster_mate'::regclass), E'; \n');
BEGIN
    PERFORM ccvec.matview_replace('neighbourhood_popularity', $view$
SELECT e.identifier,
       (sum(e.similarity * c.popularity) / sum(e.similarity))::real AS estimate,
       count(*)::integer AS support
FROM ccvec.knn_current e
JOIN ccvec.popularity_source c ON c.identifier = e.neighbour
GROUP BY e.identifier
HAVING count(*) >= (SELECT ccvec.setting('neighbourhood_popularity.min_support')) AND sum(e.similarity) > 0
$view$);
    PERFORM ccvec.matview_replace('image_score', v_score);
    PERFORM ccvec.matview_replace('cluster_mate', v_mate);
END $migration$;

DROP MATERIALIZED VIEW ccvec.cluster_mate_retired, ccvec.image_score_retired,
    ccvec.neighbourhood_popularity_retired;
