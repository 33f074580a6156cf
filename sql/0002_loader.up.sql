-- Loader: each batch is COPY'd (binary) into a session-local staging table, then moved into the
-- catalog, feature and embedding tables by ccvec.ingest_batch() in the same transaction. A crash
-- loses only the batch in flight; ON CONFLICT makes reruns and duplicate inputs harmless.

CREATE FUNCTION ccvec.create_load_stage() RETURNS void
LANGUAGE sql AS $$
    CREATE TEMP TABLE IF NOT EXISTS ccvec_load_stage (
        identifier     uuid NOT NULL,
        phash          bigint NOT NULL,
        content_sha256 bytea NOT NULL,
        width          integer NOT NULL,
        height         integer NOT NULL,
        filesize       bigint NOT NULL,
        embedding      halfvec,
        metadata       jsonb NOT NULL
    ) ON COMMIT DELETE ROWS;
$$;

CREATE FUNCTION ccvec.ingest_batch(p_model text, p_write_catalog boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF p_write_catalog THEN
        -- Catalog rows for users without a catalog: manifest metadata mapped onto ccvec.image's
        -- columns by name; decoded size wins over what a manifest claims.
        INSERT INTO ccvec.image
        SELECT (jsonb_populate_record(
                    NULL::ccvec.image,
                    s.metadata || jsonb_build_object(
                        'identifier', s.identifier, 'width', s.width, 'height', s.height,
                        'filesize', least(s.filesize, 2147483647),
                        'created_on', now(), 'updated_on', now(), 'removed_from_source', false))).*
        FROM pg_temp.ccvec_load_stage s
        ON CONFLICT (identifier) DO NOTHING;
    END IF;

    INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height)
    SELECT DISTINCT ON (identifier) identifier, phash, content_sha256, width, height
    FROM pg_temp.ccvec_load_stage
    ON CONFLICT (identifier) DO UPDATE
        SET phash = EXCLUDED.phash, content_sha256 = EXCLUDED.content_sha256,
            width = EXCLUDED.width, height = EXCLUDED.height, computed_at = now()
        WHERE ccvec.image_feature.content_sha256 <> EXCLUDED.content_sha256;

    INSERT INTO ccvec.image_embedding (model, identifier, embedding)
    SELECT DISTINCT ON (identifier) p_model, identifier, embedding
    FROM pg_temp.ccvec_load_stage
    WHERE embedding IS NOT NULL
    ON CONFLICT (model, identifier) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;

    DELETE FROM pg_temp.ccvec_load_stage;
    RETURN n;
END $$;

-- Which of these identifiers still need an embedding from this model (the resume check).
CREATE FUNCTION ccvec.missing_embeddings(p_model text, p_ids uuid[])
RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT id FROM unnest(p_ids) AS id
    WHERE NOT EXISTS (
        SELECT 1 FROM ccvec.image_embedding e WHERE e.model = p_model AND e.identifier = id);
$$;
