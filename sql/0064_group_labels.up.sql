-- Cluster names from classes named a diverse cluster after two one-image guesses: 24 mixed animals
-- of GCompris "Komodo dragon · koala", 61 mammal stamps "ibex · ox", 40 bird stamps "hen · tailed
-- frog" (the heaviest class held 5-8 % of the predicted mass). When no class carries
-- cluster_label.min_class_share of it and one kind of thing (the ImageNet class's part of WordNet:
-- mammals, birds, fish, food, landscapes...) carries half, the cluster is named by that kind.

INSERT INTO ccvec.setting (name, value, note) VALUES
    ('cluster_label.min_class_share', 0.1, 'share of a cluster''s predicted class mass the heaviest class needs to name it; below, a kind of thing holding half the mass (mammals, birds...) names it instead')
ON CONFLICT (name) DO NOTHING;

-- ImageNet-1k's classes are ordered by WordNet synset, so each kind is a few index ranges
-- (checked against ccvec/data/imagenet_classes.tsv: 0 tench, 397 puffer, 398 abacus, 924 guacamole,
-- 970 alp, 984 rapeseed, 999 toilet tissue; tests/test_clusters.py checks the boundaries' names).
CREATE FUNCTION ccvec.imagenet_group(p_class integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_class BETWEEN 0 AND 6 OR p_class BETWEEN 389 AND 397 THEN 'fish'
        WHEN p_class BETWEEN 7 AND 24 OR p_class BETWEEN 80 AND 100 OR p_class BETWEEN 127 AND 146 THEN 'birds'
        WHEN p_class BETWEEN 25 AND 68 THEN 'reptiles and amphibians'
        WHEN p_class BETWEEN 69 AND 79 OR p_class BETWEEN 107 AND 126 OR p_class BETWEEN 300 AND 329
            THEN 'insects and other invertebrates'
        WHEN p_class BETWEEN 151 AND 268 THEN 'dogs'
        WHEN p_class BETWEEN 101 AND 106 OR p_class BETWEEN 147 AND 150 OR p_class BETWEEN 269 AND 299
          OR p_class BETWEEN 330 AND 388 THEN 'mammals'
        WHEN p_class BETWEEN 924 AND 969 THEN 'food'
        WHEN p_class BETWEEN 970 AND 980 THEN 'landscapes'
        WHEN p_class BETWEEN 981 AND 983 THEN 'people'
        WHEN p_class BETWEEN 984 AND 998 THEN 'plants and fungi'
        WHEN p_class BETWEEN 0 AND 999 THEN 'objects'
    END
$$;
COMMENT ON FUNCTION ccvec.imagenet_group(integer) IS
    'The kind of thing ImageNet-1k class p_class is: fish, birds, reptiles and amphibians, insects and other invertebrates, dogs, mammals, food, landscapes, people, plants and fungi, or objects (NULL outside 0-999). Names a cluster no single class carries (ccvec.cluster_names).';

CREATE OR REPLACE FUNCTION ccvec.cluster_names(p_run bigint)
RETURNS TABLE (cluster integer, label text, source text)
LANGUAGE sql STABLE AS $$
    WITH members AS (
        SELECT m.identifier, m.cluster FROM ccvec.cluster_member m WHERE m.run_id = p_run
    ),
    run AS (
        SELECT k.model FROM ccvec.cluster_run r JOIN ccvec.knn_run k ON k.id = r.knn_run WHERE r.id = p_run
    ),
    sizes AS (SELECT m.cluster, count(*)::integer AS size FROM members m GROUP BY m.cluster),
    image_tags AS (
        SELECT DISTINCT m.cluster, m.identifier, lower(btrim(t.tag ->> 'name')) AS tag
        FROM members m
        JOIN ccvec.catalog c ON c.identifier = m.identifier
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
        WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
        UNION
        SELECT m.cluster, m.identifier, i.tag FROM members m JOIN ccvec.inferred_tags_if_ready() i USING (identifier)
    ),
    tag_votes AS (
        SELECT t.cluster, t.tag, count(*)::real / s.size AS share
        FROM image_tags t JOIN sizes s USING (cluster)
        GROUP BY t.cluster, t.tag, s.size
        HAVING count(*)::real / s.size >= (SELECT ccvec.setting('cluster_label.min_tag_share'))
    ),
    tag_labels AS (
        SELECT v.cluster, string_agg(v.tag, ' · ' ORDER BY v.share DESC, v.tag) AS label
        FROM (SELECT tv.cluster, tv.tag, tv.share,
                     row_number() OVER (PARTITION BY tv.cluster ORDER BY tv.share DESC, tv.tag) AS rk
              FROM tag_votes tv) v
        WHERE v.rk <= 2 GROUP BY v.cluster
    ),
    class_votes AS (
        SELECT m.cluster, p.class_id, sum(p.prob) AS mass
        FROM members m
        JOIN ccvec.image_class ic ON ic.model = (SELECT run.model FROM run) AND ic.identifier = m.identifier
        CROSS JOIN LATERAL unnest(ic.classes, ic.probs) AS p(class_id, prob)
        GROUP BY m.cluster, p.class_id
    ),
    class_labels AS (
        SELECT v.cluster, string_agg(cn.name, ' · ' ORDER BY v.mass DESC, cn.name) AS label
        FROM (SELECT cv.cluster, cv.class_id, cv.mass,
                     row_number() OVER (PARTITION BY cv.cluster ORDER BY cv.mass DESC, cv.class_id) AS rk
              FROM class_votes cv) v
        JOIN ccvec.class_name cn ON cn.model = (SELECT run.model FROM run) AND cn.class_id = v.class_id
        WHERE v.rk <= 2 GROUP BY v.cluster
    ),
    class_mass AS (SELECT cv.cluster, sum(cv.mass) AS total, max(cv.mass) AS top FROM class_votes cv GROUP BY cv.cluster),
    group_labels AS (  -- no class carries the cluster, but most of it is one kind of living thing, food...
        SELECT DISTINCT ON (g.cluster) g.cluster, g.grp AS label
        FROM (SELECT cv.cluster, ccvec.imagenet_group(cv.class_id) AS grp, sum(cv.mass) AS mass
              FROM class_votes cv GROUP BY 1, 2) g
        JOIN class_mass m USING (cluster)
        WHERE g.grp <> 'objects' AND g.mass >= 0.5 * m.total
          AND m.top < (SELECT ccvec.setting('cluster_label.min_class_share')) * m.total
        ORDER BY g.cluster, g.mass DESC
    )
    SELECT s.cluster, coalesce(t.label, gl.label, c.label, 'cluster ' || s.cluster),
           CASE WHEN t.label IS NOT NULL THEN 'tags' WHEN c.label IS NOT NULL THEN 'classes' ELSE 'none' END
    FROM sizes s
    LEFT JOIN tag_labels t USING (cluster)
    LEFT JOIN group_labels gl USING (cluster)
    LEFT JOIN class_labels c USING (cluster)
$$;
COMMENT ON FUNCTION ccvec.cluster_names(bigint) IS
    'The name of every cluster of run p_run and where it comes from: the two tags (provider and inferred) most of its members carry, at least cluster_label.min_tag_share of them (source ''tags''), else, when no ImageNet class carries cluster_label.min_class_share of the members'' predicted mass and one kind (ccvec.imagenet_group, not objects) carries half of it, that kind (''classes''), else its two heaviest ImageNet classes (''classes''), else ''cluster N'' (''none'').';
