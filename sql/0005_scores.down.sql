DROP MATERIALIZED VIEW IF EXISTS ccvec.image_score;
DROP MATERIALIZED VIEW IF EXISTS ccvec.web_authority;
DROP FUNCTION IF EXISTS ccvec.web_rank_score(bigint, bigint);
DROP FUNCTION IF EXISTS ccvec.reversed_domain(text);
DROP FUNCTION IF EXISTS ccvec.reverse_host(text);
DROP TABLE IF EXISTS ccvec.web_rank_release;
DROP TABLE IF EXISTS ccvec.web_rank;
DROP FUNCTION IF EXISTS ccvec.visualrank(bigint, double precision, double precision);
DROP TABLE IF EXISTS ccvec.visual_rank;
DROP TABLE IF EXISTS ccvec.visualrank_run;
-- neighbourhood estimates go back to the catalog's own column
CREATE OR REPLACE VIEW ccvec.popularity_source AS
SELECT identifier, standardized_popularity AS popularity FROM ccvec.catalog
WHERE standardized_popularity IS NOT NULL;
DROP MATERIALIZED VIEW IF EXISTS ccvec.observed_popularity;
DROP FUNCTION IF EXISTS ccvec.standardize(double precision, double precision);
DROP FUNCTION IF EXISTS ccvec.refresh_popularity_constants();
DROP FUNCTION IF EXISTS ccvec.metric_value(jsonb, text);
DROP TABLE IF EXISTS ccvec.popularity_metric;
DELETE FROM ccvec.setting WHERE name IN ('visualrank.damping', 'visualrank.tolerance', 'visualrank.max_iterations',
    'authority.weight_visual', 'authority.weight_web', 'popularity.none');
