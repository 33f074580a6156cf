-- The HTML report's data: one function per section, each limited to a scope of images (the
-- identifiers of the sources `ccvec run` was given; NULL: every image). Presentation lives in
-- ccvec/report.py and ccvec/templates/.

-- The images of a scope that were loaded (have features), without duplicates.
CREATE FUNCTION ccvec.report_scope(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (identifier uuid)
LANGUAGE sql STABLE AS $$
    SELECT f.identifier FROM ccvec.image_feature f WHERE p_ids IS NULL
    UNION ALL
    SELECT DISTINCT f.identifier FROM unnest(p_ids) AS u(identifier)
    JOIN ccvec.image_feature f ON f.identifier = u.identifier
    WHERE p_ids IS NOT NULL
$$;
COMMENT ON FUNCTION ccvec.report_scope(uuid[]) IS
    'The loaded images among p_ids (every loaded image when NULL): the scope of a report.';

-- Whether a materialized view can be read (refresh fills it; before that reading it fails).
CREATE FUNCTION ccvec.view_populated(p_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT ispopulated FROM pg_matviews
                     WHERE schemaname = 'ccvec' AND matviewname = p_name), false)
$$;
COMMENT ON FUNCTION ccvec.view_populated(text) IS
    'True when the materialized view ccvec.<p_name> exists and has been refreshed.';

-- One row per image: catalog metadata, size, content hash (the thumbnail cache key), cluster,
-- duplicate group, and scores (NULL before `ccvec refresh`).
CREATE FUNCTION ccvec.report_images(p_ids uuid[] DEFAULT NULL, p_level text DEFAULT 'default')
RETURNS TABLE (identifier uuid, title text, url text, landing_url text, creator text, creator_url text,
               license text, license_version text, provider text, width integer, height integer,
               filesize bigint, tags jsonb, content_sha256 text, cluster integer, group_id uuid,
               canonical boolean, dup_distance integer, dup_similarity real, matched_by text,
               popularity real, popularity_provenance text, popularity_support integer,
               authority real, visual_authority real, domain_authority real, prior_authority real,
               web_source text, novelty real)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT s.identifier, c.title, c.url, c.foreign_landing_url, c.creator, c.creator_url,
                c.license, c.license_version, c.provider, f.width, f.height, c.filesize::bigint,
                c.tags, encode(f.content_sha256, ''hex''), k.cluster, d.group_id, d.canonical,
                d.distance, d.similarity, d.matched_by,
                sc.popularity, sc.popularity_provenance, sc.popularity_support::integer,
                sc.authority, sc.visual_authority, sc.domain_authority, sc.prior_authority, sc.web_source,
                nv.novelty
         FROM ccvec.report_scope($1) s
         JOIN ccvec.image_feature f ON f.identifier = s.identifier
         LEFT JOIN ccvec.catalog c ON c.identifier = s.identifier
         LEFT JOIN ccvec.image_cluster k ON k.identifier = s.identifier AND k.level = $2
         LEFT JOIN ccvec.duplicate_member d ON d.identifier = s.identifier
         LEFT JOIN %s sc ON sc.identifier = s.identifier
         LEFT JOIN %s nv ON nv.identifier = s.identifier
         ORDER BY s.identifier',
        CASE WHEN ccvec.view_populated('image_score') THEN 'ccvec.image_score'
             ELSE '(SELECT NULL::uuid AS identifier, NULL::real AS popularity, NULL::text AS popularity_provenance,
                           NULL::integer AS popularity_support, NULL::real AS authority,
                           NULL::real AS visual_authority, NULL::real AS domain_authority,
                           NULL::real AS prior_authority, NULL::text AS web_source WHERE false)' END,
        CASE WHEN ccvec.view_populated('image_novelty') THEN 'ccvec.image_novelty'
             ELSE '(SELECT NULL::uuid AS identifier, NULL::real AS novelty WHERE false)' END)
    USING p_ids, p_level;
END $$;
COMMENT ON FUNCTION ccvec.report_images(uuid[], text) IS
    'Per image of the scope: catalog metadata, size, content sha256, cluster at p_level, duplicate group, scores, novelty.';

-- Members of each cluster at p_level, most central first: centrality is the summed similarity of
-- the member's graph edges to other members (in scope), so place 1 is the medoid.
CREATE FUNCTION ccvec.report_cluster_members(p_ids uuid[] DEFAULT NULL, p_level text DEFAULT 'default')
RETURNS TABLE (cluster integer, identifier uuid, place integer, centrality real)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH members AS MATERIALIZED (
        SELECT k.identifier, k.cluster
        FROM ccvec.report_scope(p_ids) s JOIN ccvec.image_cluster k USING (identifier)
        WHERE k.level = p_level
    ),
    central AS (
        SELECT m.identifier, m.cluster, coalesce(sum(e.similarity), 0)::real AS centrality
        FROM members m
        LEFT JOIN (ccvec.knn_current e JOIN members m2 ON m2.identifier = e.neighbour)
               ON e.identifier = m.identifier AND m2.cluster = m.cluster
        GROUP BY m.identifier, m.cluster
    )
    SELECT cluster, identifier,
           (row_number() OVER (PARTITION BY cluster ORDER BY centrality DESC, identifier))::integer,
           centrality
    FROM central
    ORDER BY cluster, 3
$$;
COMMENT ON FUNCTION ccvec.report_cluster_members(uuid[], text) IS
    'Cluster members of the scope at p_level, ordered by centrality (summed in-cluster edge similarity); place 1 is the medoid.';

-- One row per cluster of the scope: size, medoid, cohesion (mean similarity of in-cluster edges),
-- and its label from ccvec.cluster_label (NULL until `ccvec cluster` names it: the report shows "cluster N").
CREATE FUNCTION ccvec.report_clusters(p_ids uuid[] DEFAULT NULL, p_level text DEFAULT 'default')
RETURNS TABLE (cluster integer, size integer, medoid uuid, cohesion real, label text)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH members AS MATERIALIZED (
        SELECT k.identifier, k.cluster
        FROM ccvec.report_scope(p_ids) s JOIN ccvec.image_cluster k USING (identifier)
        WHERE k.level = p_level
    ),
    cohesion AS (
        SELECT m.cluster, avg(e.similarity)::real AS cohesion
        FROM members m
        JOIN ccvec.knn_current e ON e.identifier = m.identifier
        JOIN members m2 ON m2.identifier = e.neighbour AND m2.cluster = m.cluster
        GROUP BY m.cluster
    )
    SELECT r.cluster, count(*)::integer, (array_agg(r.identifier ORDER BY r.place))[1],
           max(c.cohesion), max(l.label)
    FROM ccvec.report_cluster_members(p_ids, p_level) r
    LEFT JOIN cohesion c ON c.cluster = r.cluster
    LEFT JOIN ccvec.cluster_label l
           ON l.cluster = r.cluster
          AND l.run_id = (SELECT max(k.run_id) FROM ccvec.image_cluster k WHERE k.level = p_level)
    GROUP BY r.cluster
    ORDER BY count(*) DESC, r.cluster
$$;
COMMENT ON FUNCTION ccvec.report_clusters(uuid[], text) IS
    'Clusters of the scope at p_level by size: medoid, cohesion (mean in-cluster edge similarity), label (NULL: unlabelled).';

-- Members of duplicate groups with at least two members in scope, canonical first.
CREATE FUNCTION ccvec.report_duplicates(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (group_id uuid, identifier uuid, canonical boolean, distance integer, similarity real,
               matched_by text)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH members AS MATERIALIZED (
        SELECT d.* FROM ccvec.report_scope(p_ids) s JOIN ccvec.duplicate_member d USING (identifier)
    )
    SELECT m.group_id, m.identifier, m.canonical, m.distance, m.similarity, m.matched_by
    FROM members m
    WHERE m.group_id IN (SELECT g.group_id FROM members g GROUP BY g.group_id HAVING count(*) > 1)
    ORDER BY m.group_id, m.canonical DESC, m.distance, m.identifier
$$;
COMMENT ON FUNCTION ccvec.report_duplicates(uuid[]) IS
    'Near-duplicate groups with two or more members in the scope: each member''s pHash distance (and embedding similarity) to the canonical.';

-- Each image's nearest neighbours in the current graph, among the scope, with the neighbour's
-- observed popularity (what an inferred popularity is averaged from).
CREATE FUNCTION ccvec.report_neighbours(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (identifier uuid, neighbour uuid, rank integer, similarity real, neighbour_popularity real)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH scope AS MATERIALIZED (SELECT identifier FROM ccvec.report_scope(p_ids))
    SELECT e.identifier, e.neighbour, e.rank::integer, e.similarity, p.popularity::real
    FROM ccvec.knn_current e
    JOIN scope a ON a.identifier = e.identifier
    JOIN scope b ON b.identifier = e.neighbour
    LEFT JOIN ccvec.popularity_source p ON p.identifier = e.neighbour
    ORDER BY e.identifier, e.rank
$$;
COMMENT ON FUNCTION ccvec.report_neighbours(uuid[]) IS
    'kNN edges of the current graph between images of the scope, with the neighbour''s observed popularity.';

-- Tags inferred from neighbours (empty before `ccvec refresh`).
CREATE FUNCTION ccvec.report_tags(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (identifier uuid, tag text, score real, support integer)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF ccvec.view_populated('inferred_tags') THEN
        RETURN QUERY
            SELECT t.identifier, t.tag, t.score, t.support
            FROM ccvec.report_scope(p_ids) s JOIN ccvec.inferred_tags t ON t.identifier = s.identifier
            ORDER BY t.identifier, t.score DESC, t.tag;
    END IF;
END $$;
COMMENT ON FUNCTION ccvec.report_tags(uuid[]) IS
    'Inferred tags of the images of the scope (none before the materialized view is refreshed).';

-- Why each image scores what it scores (as `ccvec scores` explains one): the provider metric behind
-- an observed popularity, the VisualRank behind the visual authority, the web rank behind the web
-- authority.
CREATE FUNCTION ccvec.report_score_detail(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (identifier uuid, metric text, raw_value double precision, percentile double precision,
               value_at_percentile double precision, metric_constant double precision,
               visual_rank double precision, visualrank_iterations integer, visualrank_nodes integer,
               host_rev text, host_position bigint, domain_rev text, domain_position bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT ccvec.view_populated('web_authority') THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT s.identifier, o.metric, o.raw_value, m.percentile, m.value_at_percentile, m.constant,
               v.rank, r.iterations, r.nodes, w.host_rev, h.harmonic_pos::bigint,
               ccvec.reversed_domain(w.host_rev), d.harmonic_pos::bigint
        FROM ccvec.report_scope(p_ids) s
        LEFT JOIN ccvec.observed_popularity o ON o.identifier = s.identifier
        LEFT JOIN ccvec.catalog c ON c.identifier = s.identifier
        LEFT JOIN ccvec.popularity_metric m ON m.provider = c.provider AND o.metric IS NOT NULL
        LEFT JOIN ccvec.visual_rank v ON v.identifier = s.identifier
        LEFT JOIN ccvec.visualrank_run r ON r.id = v.run_id
        LEFT JOIN ccvec.web_authority w ON w.identifier = s.identifier
        LEFT JOIN ccvec.web_rank h ON h.kind = 'host' AND h.host_rev = w.host_rev
        LEFT JOIN ccvec.web_rank d ON d.kind = 'domain' AND d.host_rev = ccvec.reversed_domain(w.host_rev);
END $$;
COMMENT ON FUNCTION ccvec.report_score_detail(uuid[]) IS
    'Per image of the scope, the numbers behind its scores: provider metric, VisualRank, web ranks.';

-- Inputs of the given sources that failed: the errors of each source's latest load run.
CREATE FUNCTION ccvec.report_errors(p_sources text[])
RETURNS TABLE (source text, stage text, reason text, run_id bigint)
LANGUAGE sql STABLE AS $$
    WITH latest AS (
        SELECT max(r.id) AS id FROM ccvec.load_run r WHERE r.source = ANY (p_sources) GROUP BY r.source
    )
    SELECT e.source, e.stage, e.reason, e.run_id
    FROM ccvec.load_error e JOIN latest l ON l.id = e.run_id
    ORDER BY e.source, e.id
$$;
COMMENT ON FUNCTION ccvec.report_errors(text[]) IS
    'Load errors of the latest load run of each of p_sources: the inputs that currently fail.';
