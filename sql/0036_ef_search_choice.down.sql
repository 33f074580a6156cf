-- Back to a fixed search breadth: no sampled exact search; 0019's knn_recall.

CREATE OR REPLACE FUNCTION ccvec.knn_recall(p_run bigint, p_sample uuid[])
RETURNS TABLE (found bigint, expected bigint)
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.knn_run;
BEGIN
    SELECT * INTO run FROM ccvec.knn_run WHERE id = p_run;
    RETURN QUERY EXECUTE format(
        'WITH s AS MATERIALIZED (
             SELECT q.identifier, q.embedding::halfvec(%1$s) AS v,
                    coalesce((SELECT max(1 - g.similarity::float8) + 1e-4 FROM ccvec.knn_edge g
                              WHERE g.run_id = $1 AND g.identifier = q.identifier
                              HAVING count(*) >= $3), 2) AS reach
             FROM ccvec.image_embedding q WHERE q.model = %2$L AND q.identifier = ANY ($2)),
         near AS (
             SELECT s.identifier, e.identifier AS neighbour, e.v <=> s.v AS distance
             FROM (SELECT identifier, embedding::halfvec(%1$s) AS v FROM ccvec.image_embedding
                   WHERE model = %2$L) e
             JOIN s ON (e.v <=> s.v) <= s.reach AND e.identifier <> s.identifier),
         exact AS (
             SELECT identifier, neighbour FROM (
                 SELECT near.*, row_number() OVER (PARTITION BY identifier ORDER BY distance, neighbour) AS rk
                 FROM near) r
             WHERE rk <= $3)
         SELECT count(g.neighbour), count(*)
         FROM exact x LEFT JOIN ccvec.knn_edge g
           ON g.run_id = $1 AND g.identifier = x.identifier AND g.neighbour = x.neighbour',
        ccvec.model_dim(run.model), run.model)
    USING p_run, p_sample, run.k;
END $$;

DROP FUNCTION ccvec.knn_run_edges(bigint, uuid[]);
DROP FUNCTION ccvec.knn_exact_within(text, uuid[], double precision[], integer);
