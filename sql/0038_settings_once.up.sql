-- Settings read once per refresh, not once per row; inferred tags aggregated before they are joined.
--
-- ccvec.setting(name) is a SQL function over ccvec.setting: called in a view's target list or
-- filter, PostgreSQL runs it for every row. At 1M images and 10M edges (bench/refresh.py, half the
-- images with two tags) ccvec.inferred_tags made about 45M such calls, and its refresh took 54 s;
-- neighbourhood_popularity's HAVING ran it per image and image_score five times per image. As an
-- uncorrelated scalar subquery, (SELECT ccvec.setting(name)), it is an InitPlan: run once.
--
-- inferred_tags is also restructured, with the same rows (compared at 1M): the image's own tags are
-- made distinct first, so the 10M carried (edge, tag) pairs need no DISTINCT sort; they are summed
-- per image and tag, and cut at min_support, before they meet the neighbourhood totals, so the
-- join sees 1.2M groups instead of 10M rows. Refresh at 1M: 54 s before, about 20 s after.
--
-- A materialized view's query cannot be altered in place, so ccvec.matview_replace swaps in a new
-- view with the old one's indexes, grants, comment and data; cluster_mate reads image_score and is
-- replaced with it.

CREATE FUNCTION ccvec.matview_replace(p_name text, p_query text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_old regclass := format('ccvec.%I', p_name)::regclass;
    v_indexes text[];
    v_index record;
    v_populated boolean;
BEGIN
    SELECT c.relispopulated INTO v_populated FROM pg_class c WHERE c.oid = v_old AND c.relkind = 'm';
    IF v_populated IS NULL THEN
        RAISE EXCEPTION 'ccvec.% is not a materialized view', p_name;
    END IF;
    IF octet_length(p_name || '_retired') > 63 THEN  -- PostgreSQL would cut the name silently
        RAISE EXCEPTION 'ccvec.%: name too long to keep the old view beside the new one', p_name;
    END IF;
    SELECT array_agg(pg_get_indexdef(i.indexrelid)) INTO v_indexes FROM pg_index i WHERE i.indrelid = v_old;
    EXECUTE format('ALTER MATERIALIZED VIEW %s RENAME TO %I', v_old, p_name || '_retired');
    FOR v_index IN SELECT i.indexrelid::regclass AS index, c.relname FROM pg_index i
                   JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = v_old LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', v_index.index, v_index.relname || '_retired');
    END LOOP;
    -- WITH NO DATA on a line of its own, in case p_query ends in a -- comment
    EXECUTE format(E'CREATE MATERIALIZED VIEW ccvec.%I AS %s\nWITH NO DATA', p_name, p_query);
    EXECUTE format('ALTER MATERIALIZED VIEW ccvec.%I OWNER TO %s', p_name,
                   (SELECT c.relowner::regrole FROM pg_class c WHERE c.oid = v_old));
    -- the definitions were taken before the renames: they name the new view and the old indexes' names
    IF v_indexes IS NOT NULL THEN
        EXECUTE (SELECT string_agg(d, '; ') FROM unnest(v_indexes) d);
    END IF;
    PERFORM ccvec.copy_grants(v_old, format('ccvec.%I', p_name)::regclass);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW ccvec.%I IS %L', p_name, obj_description(v_old, 'pg_class'));
    IF v_populated THEN
        EXECUTE format('REFRESH MATERIALIZED VIEW ccvec.%I', p_name);
    END IF;
END $$;
COMMENT ON FUNCTION ccvec.matview_replace(text, text) IS
    'Give materialized view ccvec.p_name a new query (p_query), keeping its owner, indexes, grants and comment, and its data (refreshed) if it had any. The old view stays, renamed p_name_retired (its indexes _retired too), so that views reading it can be replaced in turn; the caller drops the retired ones. For migrations.';

SELECT ccvec.matview_replace('inferred_tags', $view$
WITH knobs AS (
    SELECT ccvec.setting('inferred_tags.weight_power') AS weight_power,
           ccvec.setting('inferred_tags.untagged_power') AS untagged_power,
           ccvec.setting('inferred_tags.min_support') AS min_support,
           ccvec.setting('inferred_tags.min_score') AS min_score,
           ccvec.setting('inferred_tags.min_score_tagged') AS min_score_tagged
),
own AS (
    SELECT DISTINCT c.identifier, lower(btrim(t.tag ->> 'name')) AS tag
    FROM ccvec.catalog c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
    WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
),
tagged AS (SELECT DISTINCT identifier FROM own),
frequency AS (SELECT tag, count(*) AS images FROM own GROUP BY tag),
edges AS (
    SELECT e.identifier, e.neighbour, power(greatest(e.similarity, 0), k.weight_power) AS weight,
           t.identifier IS NOT NULL AS neighbour_tagged
    FROM ccvec.knn_current e CROSS JOIN knobs k LEFT JOIN tagged t ON t.identifier = e.neighbour
),
neighbourhood AS (
    SELECT n.identifier, n.tagged_weight, n.untagged_weight, t.identifier IS NOT NULL AS is_tagged
    FROM (SELECT identifier,
                 sum(weight) FILTER (WHERE neighbour_tagged) AS tagged_weight,
                 coalesce(sum(weight) FILTER (WHERE NOT neighbour_tagged), 0) AS untagged_weight
          FROM edges GROUP BY identifier) n
    LEFT JOIN tagged t USING (identifier)
),
untagged AS (  -- u^p, as exp(p ln u) kept above float8's underflow for a large p
    SELECT coalesce(exp(greatest(ln(nullif(avg((NOT n.is_tagged)::integer)::float8, 0)) * min(k.untagged_power),
                                 -700)), 0) AS weight
    FROM neighbourhood n CROSS JOIN knobs k
),
carried AS (  -- per image and tag its neighbours carry: their weight and how many
    SELECT e.identifier, o.tag, sum(e.weight) AS weight, count(*) AS support
    FROM edges e JOIN own o ON o.identifier = e.neighbour
    GROUP BY e.identifier, o.tag
    HAVING count(*) >= (SELECT min_support FROM knobs)
),
scored AS (
    SELECT c.identifier, c.tag, n.is_tagged,
           (c.weight / nullif(n.tagged_weight + u.weight * n.untagged_weight, 0))::real AS score,
           c.support::integer AS support
    FROM carried c JOIN neighbourhood n USING (identifier) CROSS JOIN untagged u
)
SELECT s.identifier, s.tag, s.score, s.support, s.is_tagged AS already_tagged,
       row_number() OVER (PARTITION BY s.identifier ORDER BY s.score DESC, f.images DESC, s.tag)::integer AS rank
FROM scored s JOIN frequency f USING (tag) CROSS JOIN knobs k
WHERE s.score >= CASE WHEN s.is_tagged THEN k.min_score_tagged ELSE k.min_score END
  AND NOT EXISTS (SELECT 1 FROM own o WHERE o.identifier = s.identifier AND o.tag = s.tag)
$view$);

SELECT ccvec.matview_replace('neighbourhood_popularity', $view$
SELECT e.identifier,
       (sum(e.similarity * c.popularity) / sum(e.similarity))::real AS estimate,
       count(*)::integer AS support
FROM ccvec.knn_current e
JOIN ccvec.popularity_source c ON c.identifier = e.neighbour
GROUP BY e.identifier
HAVING count(*) >= (SELECT ccvec.setting('neighbourhood_popularity.min_support')) AND sum(e.similarity) > 0
$view$);

SELECT ccvec.matview_replace('image_score', $view$
SELECT c.identifier,
       coalesce(o.popularity, n.estimate, (SELECT ccvec.setting('popularity.none')))::real AS popularity,
       CASE WHEN o.popularity IS NOT NULL THEN 'observed'
            WHEN n.estimate IS NOT NULL THEN 'inferred' ELSE 'none' END AS popularity_provenance,
       CASE WHEN o.popularity IS NOT NULL THEN 1 ELSE coalesce(n.support, 0) END AS popularity_support,
       (CASE WHEN v.score IS NULL THEN w.authority
             ELSE ((SELECT ccvec.setting('authority.weight_visual')) * v.score
                   + (SELECT ccvec.setting('authority.weight_web')) * w.authority)
                  / ((SELECT ccvec.setting('authority.weight_visual')) + (SELECT ccvec.setting('authority.weight_web'))) END)::real
           AS authority,
       v.score AS visual_authority,
       CASE WHEN w.source IN ('host', 'domain') THEN w.authority END AS domain_authority,
       CASE WHEN w.source = 'provider' THEN w.authority END AS prior_authority,
       w.source AS web_source
FROM ccvec.catalog c
LEFT JOIN ccvec.popularity_source o ON o.identifier = c.identifier
LEFT JOIN ccvec.neighbourhood_popularity n ON n.identifier = c.identifier
LEFT JOIN ccvec.visual_rank v ON v.identifier = c.identifier
LEFT JOIN ccvec.web_authority w ON w.identifier = c.identifier
$view$);

SELECT ccvec.matview_replace('cluster_mate', $view$
SELECT c.level, c.cluster, c.identifier,
       row_number() OVER (PARTITION BY c.level, c.cluster
                          ORDER BY coalesce(s.popularity, 0) + coalesce(s.authority, 0) DESC, c.identifier) AS position
FROM ccvec.image_cluster c
LEFT JOIN ccvec.image_score s ON s.identifier = c.identifier
$view$);

-- Migrations 0033 and 0034 dropped and re-created inferred_tags and image_novelty without their
-- grants: a role given access before them (ccvec.grant_access) could no longer read either. Every
-- level grants SELECT on every view alike, so they get image_score's grants back (a role granted
-- image_score by hand, not through grant_access, can now read these two views as well).
SELECT ccvec.copy_grants('ccvec.image_score', 'ccvec.inferred_tags');
SELECT ccvec.copy_grants('ccvec.image_score', 'ccvec.image_novelty');

DROP MATERIALIZED VIEW ccvec.cluster_mate_retired, ccvec.image_score_retired,
    ccvec.neighbourhood_popularity_retired, ccvec.inferred_tags_retired;
