-- The functions that read what `ccvec refresh` computes (materialized views) failed before the
-- first refresh with PostgreSQL's "materialized view ... has not been populated" and its hint "Use
-- the REFRESH MATERIALIZED VIEW command", which is not how ccvec's views are refreshed (their
-- order matters: `ccvec refresh` runs them as stages). They now raise VC005 naming the view and the
-- command, checked first by ccvec.require_refreshed.

CREATE OR REPLACE FUNCTION ccvec.require_refreshed(p_views text[]) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE missing text;
BEGIN
    SELECT string_agg('ccvec.' || v, ', ' ORDER BY o) INTO missing
    FROM unnest(p_views) WITH ORDINALITY AS t(v, o) WHERE NOT ccvec.view_populated(v);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION '% not computed yet: run `ccvec refresh`', missing USING ERRCODE = 'VC005';
    END IF;
END $$;
COMMENT ON FUNCTION ccvec.require_refreshed(text[]) IS
    'Raises VC005 naming those of the materialized views p_views (names in schema ccvec) that `ccvec refresh` has not computed yet; nothing when all are. Called first by the functions that read them.';

CREATE OR REPLACE FUNCTION ccvec.explain_score(p_identifier uuid)
 RETURNS TABLE(popularity real, provenance text, support integer, authority real, visual real, domain real, prior real, web_source text)
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    PERFORM ccvec.require_refreshed(ARRAY['image_score']);
    RETURN QUERY
    SELECT s.popularity, s.popularity_provenance, s.popularity_support, s.authority, s.visual_authority,
    s.domain_authority, s.prior_authority, s.web_source FROM ccvec.image_score s WHERE s.identifier = p_identifier;
END $function$;

CREATE OR REPLACE FUNCTION ccvec.explain_host(p_identifier uuid)
 RETURNS TABLE(host_rev text, source text, host_pos bigint, domain_rev text, domain_pos bigint)
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    PERFORM ccvec.require_refreshed(ARRAY['web_authority']);
    RETURN QUERY
    SELECT w.host_rev, w.source, h.harmonic_pos, d.host_rev, d.harmonic_pos FROM ccvec.web_authority w
    LEFT JOIN ccvec.web_rank h ON h.kind = 'host' AND h.host_rev = w.host_rev
    LEFT JOIN ccvec.web_rank d ON d.kind = 'domain' AND d.host_rev = ccvec.reversed_domain(w.host_rev)
    WHERE w.identifier = p_identifier;
END $function$;

CREATE OR REPLACE FUNCTION ccvec.explain_novelty(p_identifier uuid)
 RETURNS TABLE(against text, novelty real, detail text)
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    PERFORM ccvec.require_refreshed(ARRAY['image_novelty']);
    RETURN QUERY
    SELECT 'within the collection', n.novelty,
    format('distance to the centre in spreads %s, mean kNN distance %s',
           round(n.score::numeric, 2), round(n.distance::numeric, 3))
    FROM ccvec.image_novelty n WHERE n.identifier = p_identifier
    UNION ALL SELECT 'against ' || r.name, r.novelty, r.reference FROM ccvec.reference_novelty r
    WHERE r.identifier = p_identifier;
END $function$;

CREATE OR REPLACE FUNCTION ccvec.inferred_tags_all()
 RETURNS TABLE(identifier uuid, tag text, score real, support integer, already_tagged boolean)
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    PERFORM ccvec.require_refreshed(ARRAY['inferred_tags']);
    RETURN QUERY
    SELECT t.identifier, t.tag, t.score, t.support, t.already_tagged FROM ccvec.inferred_tags t
    ORDER BY t.identifier, t.rank;
END $function$;

CREATE OR REPLACE FUNCTION ccvec.inferred_tags_of(p_identifier uuid)
 RETURNS TABLE(tag text, score real, support integer)
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    PERFORM ccvec.require_refreshed(ARRAY['inferred_tags']);
    RETURN QUERY
    SELECT t.tag, t.score, t.support FROM ccvec.inferred_tags t WHERE t.identifier = p_identifier
    ORDER BY t.rank;
END $function$;

CREATE OR REPLACE FUNCTION ccvec.score_summary()
 RETURNS TABLE(images bigint, observed bigint, inferred bigint, visual bigint, tags bigint)
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    PERFORM ccvec.require_refreshed(ARRAY['image_score', 'inferred_tags']);
    RETURN QUERY
    SELECT count(*), count(*) FILTER (WHERE popularity_provenance = 'observed'),
    count(*) FILTER (WHERE popularity_provenance = 'inferred'),
    count(*) FILTER (WHERE visual_authority IS NOT NULL),
    (SELECT count(*) FROM ccvec.inferred_tags) FROM ccvec.image_score;
END $function$;
