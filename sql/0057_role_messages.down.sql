-- Restores grant_access as 0007 wrote it and revoke_access as 0052 wrote it.
CREATE OR REPLACE FUNCTION ccvec.grant_access(p_role text, p_level text) RETURNS void
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


CREATE OR REPLACE FUNCTION ccvec.revoke_access(p_role text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
        RAISE EXCEPTION 'role % does not exist', coalesce(p_role, 'NULL') USING ERRCODE = 'VC002';
    END IF;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA ccvec FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA ccvec FROM %I', p_role);
    EXECUTE format('REVOKE EXECUTE ON FUNCTION ccvec.create_embedding_index(text, integer, integer), '
                   'ccvec.drop_embedding_index(text) FROM %I', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA ccvec FROM %I', p_role);
END $function$
;
COMMENT ON FUNCTION ccvec.revoke_access(text) IS
    'Takes back every access level granted to a role. Raises VC002 when there is no such role.';
