-- Back to 0053: the functions read the views directly (PostgreSQL's error before the first refresh).

CREATE OR REPLACE FUNCTION ccvec.explain_score(p_identifier uuid)
 RETURNS TABLE(popularity real, provenance text, support integer, authority real, visual real, domain real, prior real, web_source text)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT s.popularity, s.popularity_provenance, s.popularity_support, s.authority, s.visual_authority,
    s.domain_authority, s.prior_authority, s.web_source FROM ccvec.image_score s WHERE s.identifier = p_identifier
$function$;

CREATE OR REPLACE FUNCTION ccvec.explain_host(p_identifier uuid)
 RETURNS TABLE(host_rev text, source text, host_pos bigint, domain_rev text, domain_pos bigint)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT w.host_rev, w.source, h.harmonic_pos, d.host_rev, d.harmonic_pos FROM ccvec.web_authority w
    LEFT JOIN ccvec.web_rank h ON h.kind = 'host' AND h.host_rev = w.host_rev
    LEFT JOIN ccvec.web_rank d ON d.kind = 'domain' AND d.host_rev = ccvec.reversed_domain(w.host_rev)
    WHERE w.identifier = p_identifier
$function$;

CREATE OR REPLACE FUNCTION ccvec.explain_novelty(p_identifier uuid)
 RETURNS TABLE(against text, novelty real, detail text)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT 'within the collection', n.novelty,
    format('distance to the centre in spreads %s, mean kNN distance %s',
           round(n.score::numeric, 2), round(n.distance::numeric, 3))
    FROM ccvec.image_novelty n WHERE n.identifier = p_identifier
    UNION ALL SELECT 'against ' || r.name, r.novelty, r.reference FROM ccvec.reference_novelty r
    WHERE r.identifier = p_identifier
$function$;

CREATE OR REPLACE FUNCTION ccvec.inferred_tags_all()
 RETURNS TABLE(identifier uuid, tag text, score real, support integer, already_tagged boolean)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT t.identifier, t.tag, t.score, t.support, t.already_tagged FROM ccvec.inferred_tags t
    ORDER BY t.identifier, t.rank
$function$;

CREATE OR REPLACE FUNCTION ccvec.inferred_tags_of(p_identifier uuid)
 RETURNS TABLE(tag text, score real, support integer)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT t.tag, t.score, t.support FROM ccvec.inferred_tags t WHERE t.identifier = p_identifier
    ORDER BY t.rank
$function$;

CREATE OR REPLACE FUNCTION ccvec.score_summary()
 RETURNS TABLE(images bigint, observed bigint, inferred bigint, visual bigint, tags bigint)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT count(*), count(*) FILTER (WHERE popularity_provenance = 'observed'),
    count(*) FILTER (WHERE popularity_provenance = 'inferred'),
    count(*) FILTER (WHERE visual_authority IS NOT NULL),
    (SELECT count(*) FROM ccvec.inferred_tags) FROM ccvec.image_score
$function$;

DROP FUNCTION ccvec.require_refreshed(text[]);
