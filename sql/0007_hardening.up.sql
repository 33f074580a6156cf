-- Hardening (issue 13): a trace of HNSW indexes dropped by a load that never rebuilt them, and
-- access levels for other roles (reader / searcher / writer).

-- A load that drops a model's HNSW index for a bulk insert says so first; the rebuild clears it.
ALTER TABLE ccvec.load_run ADD COLUMN index_dropped boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN ccvec.load_run.index_dropped IS
    'This run dropped the model''s HNSW index to load faster; cleared when the index is rebuilt.';

CREATE FUNCTION ccvec.missing_indexes()
RETURNS TABLE (model text, index_name text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT r.model, ccvec.embedding_index_name(r.model)
    FROM ccvec.load_run r
    WHERE r.index_dropped AND NOT ccvec.has_embedding_index(r.model)
      AND EXISTS (SELECT 1 FROM ccvec.model m WHERE m.name = r.model)
$$;
COMMENT ON FUNCTION ccvec.missing_indexes() IS
    'Models whose HNSW index a load dropped and nothing rebuilt (a killed load); the next load, '
    'graph or semantic dedup rebuilds it.';

CREATE FUNCTION ccvec.index_rebuilt(p_model text) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.load_run SET index_dropped = false WHERE model = p_model AND index_dropped;
$$;
COMMENT ON FUNCTION ccvec.index_rebuilt(text) IS
    'Clears the dropped-index trace of a model once its HNSW index exists again.';

-- Index DDL needs ownership of ccvec.image_embedding; writers get it through these two functions
-- (run as their owner) and nothing else.
ALTER FUNCTION ccvec.create_embedding_index(text, integer, integer)
    SECURITY DEFINER SET search_path = pg_catalog, public;
ALTER FUNCTION ccvec.drop_embedding_index(text) SECURITY DEFINER SET search_path = pg_catalog, public;
REVOKE EXECUTE ON FUNCTION ccvec.create_embedding_index(text, integer, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ccvec.drop_embedding_index(text) FROM PUBLIC;

CREATE FUNCTION ccvec.grant_access(p_role text, p_level text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_level NOT IN ('reader', 'searcher', 'writer') THEN
        RAISE EXCEPTION 'unknown access level %: use reader, searcher or writer', p_level USING ERRCODE = 'VC001';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
        RAISE EXCEPTION 'role % does not exist: CREATE ROLE % LOGIN first', p_role, p_role USING ERRCODE = 'VC002';
    END IF;
    -- reader: the catalog, features, graph, scores and views; search functions run as the caller,
    -- so whatever they would write is refused by table privileges.
    EXECUTE format('GRANT USAGE ON SCHEMA ccvec TO %I', p_role);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA ccvec TO %I', p_role);
    IF p_level IN ('searcher', 'writer') THEN
        -- ccvec.substitute() logs what it served; applications log events.
        EXECUTE format('GRANT INSERT, UPDATE ON ccvec.ab_served, ccvec.ab_event TO %I', p_role);
        EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA ccvec TO %I', p_role);
    END IF;
    IF p_level = 'writer' THEN
        -- loads: catalog, features, embeddings, models, run and error records, index rebuilds.
        EXECUTE format('GRANT INSERT, UPDATE ON ccvec.image, ccvec.image_feature, ccvec.image_embedding, '
                       'ccvec.model, ccvec.load_run, ccvec.load_error TO %I', p_role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION ccvec.create_embedding_index(text, integer, integer), '
                       'ccvec.drop_embedding_index(text) TO %I', p_role);
    END IF;
END $$;
COMMENT ON FUNCTION ccvec.grant_access(text, text) IS
    'Grants an existing role one access level: reader (SELECT, search), searcher (reader + '
    'substitute() and event logging), writer (searcher + loads).';

CREATE FUNCTION ccvec.revoke_access(p_role text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA ccvec FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA ccvec FROM %I', p_role);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION ccvec.create_embedding_index(text, integer, integer), '
                   'ccvec.drop_embedding_index(text) FROM %I', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA ccvec FROM %I', p_role);
END $$;
COMMENT ON FUNCTION ccvec.revoke_access(text) IS 'Takes back every access level granted to a role.';
REVOKE EXECUTE ON FUNCTION ccvec.grant_access(text, text), ccvec.revoke_access(text) FROM PUBLIC;
